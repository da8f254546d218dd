-- prelude.lua: shared by every script (prepended by redisstore.go).
--
-- ARGV[1] is the key prefix of one partition, hash tag included, such as
-- "fsmc:{fsmc-7}:". Every key a script touches is built from it, so all
-- of them live in one Cluster slot; KEYS[1] is that partition's sequence
-- key, declared for routing.
--
-- Per partition:  P.."seq"       counter: work members and lease fences
--                 P.."leases"    zset unit -> lease expiry (ms)
--                 P.."tokens"    hash unit -> "fence|member" of the current lease
--                 P.."changes"   stream of changelog entries
--                 P.."ready:"..p zset unit -> due (ms), for priority p 0-9
-- Per instance, one hash P.."i:"..id (small values, so Redis keeps it as
-- a compact listpack while the instance is quiet):
--   v version   st status   pr priority   h machine id
--   d c f       state/visit/times, context, failure (written by Go only)
--   hi          history entries, oldest first, "\n"-separated, capped
--   "w:"..m     instance work m (events, timer firings, task results)
--   "t:"..m     pending task attempt m
-- Work values start "due,kind,action" (see wire.go). Instance work runs
-- in order of due time, then arrival (m counts up).
-- Units (what is claimed): "q|"..id for the head of an instance's work,
-- "t|"..action.."|"..m.."|"..id for a task attempt.
local P = ARGV[1]
local ACTIVE = "1"

local function ik(id) return P .. "i:" .. id end
local function ready(prio) return P .. "ready:" .. prio end

local function prioOf(id)
  return tonumber(redis.call("HGET", ik(id), "pr") or "0")
end

-- dueOf reads the due time (ms) and action of a work value (a record
-- leaves out trailing zeros).
local function dueOf(value)
  local due = string.match(value, "^(%-?%d+)")
  local action = string.match(value, "^%-?%d+,%d+,(%-?%d+)") or "0"
  return tonumber(due), action
end

-- head returns the member and due time of id's next instance work, or
-- nil when it has none.
local function head(id)
  local fields = redis.call("HGETALL", ik(id))
  local best, bestDue, bestSeq
  for k = 1, #fields, 2 do
    local f = fields[k]
    if string.sub(f, 1, 2) == "w:" then
      local due, seq = dueOf(fields[k + 1]), tonumber(string.sub(f, 3))
      if not best or due < bestDue or (due == bestDue and seq < bestSeq) then
        best, bestDue, bestSeq = string.sub(f, 3), due, seq
      end
    end
  end
  return best, bestDue
end

-- reschedule puts the head of id's work in its ready set when the
-- instance is active, has instance work, and that work is not leased.
local function reschedule(id)
  local unit = "q|" .. id
  local prio = prioOf(id)
  redis.call("ZREM", ready(prio), unit)
  if redis.call("ZSCORE", P .. "leases", unit) then return end
  if redis.call("HGET", ik(id), "st") ~= ACTIVE then return end
  local _, due = head(id)
  if due then redis.call("ZADD", ready(prio), due, unit) end
end

-- addWork stores one item of work: kind "task" or other, its action,
-- due time (ms) and value.
local function addWork(id, kind, action, due, value)
  local member = tostring(redis.call("INCR", P .. "seq"))
  if kind == "task" then
    redis.call("HSET", ik(id), "t:" .. member, value)
    redis.call("ZADD", ready(prioOf(id)), due, "t|" .. action .. "|" .. member .. "|" .. id)
  else
    redis.call("HSET", ik(id), "w:" .. member, value)
  end
end

-- parseUnit returns kind ("q" or "t"), instance id, member and action.
local function parseUnit(unit)
  if string.sub(unit, 1, 2) == "q|" then
    return "q", string.sub(unit, 3), nil, nil
  end
  local action, member, id = string.match(unit, "^t|([^|]*)|([^|]*)|(.*)$")
  return "t", id, member, action
end

-- leaseOf returns a unit's lease token and the member it holds.
local function leaseOf(unit)
  local v = redis.call("HGET", P .. "tokens", unit)
  if not v then return nil, nil end
  return string.match(v, "^([^|]*)|(.*)$")
end

-- holds reports whether unit is leased with token.
local function holds(unit, token)
  local t = leaseOf(unit)
  return t ~= nil and t == token
end

local function unlease(unit)
  redis.call("ZREM", P .. "leases", unit)
  redis.call("HDEL", P .. "tokens", unit)
end

-- giveBack makes a unit claimable again (a release or an expired lease).
local function giveBack(unit)
  unlease(unit)
  local kind, id, member = parseUnit(unit)
  if kind == "q" then
    reschedule(id)
  else
    local value = redis.call("HGET", ik(id), "t:" .. member)
    if value then
      redis.call("ZADD", ready(prioOf(id)), dueOf(value), unit)
    end
  end
end

-- finish removes the work a leased unit stands for.
local function finish(unit)
  local _, leased = leaseOf(unit)
  unlease(unit)
  local kind, id, member = parseUnit(unit)
  if kind == "q" then
    redis.call("HDEL", ik(id), "w:" .. leased)
  else
    redis.call("HDEL", ik(id), "t:" .. member)
  end
end

-- dropAll removes all of an instance's pending work.
local function dropAll(id)
  local prio = prioOf(id)
  local fields = redis.call("HGETALL", ik(id))
  for k = 1, #fields, 2 do
    local f = fields[k]
    local kind = string.sub(f, 1, 2)
    if kind == "t:" then
      local _, action = dueOf(fields[k + 1])
      local unit = "t|" .. action .. "|" .. string.sub(f, 3) .. "|" .. id
      redis.call("ZREM", ready(prio), unit)
      unlease(unit)
    end
    if kind == "t:" or kind == "w:" then
      redis.call("HDEL", ik(id), f)
    end
  end
  redis.call("ZREM", ready(prio), "q|" .. id)
end

-- writeData sets the fields only Go reads, from ARGV[i..i+2] (d, c, f);
-- an empty value removes its field.
local function writeData(id, i)
  for k, field in ipairs({"d", "c", "f"}) do
    local value = ARGV[i + k - 1]
    if value == "" then
      redis.call("HDEL", ik(id), field)
    else
      redis.call("HSET", ik(id), field, value)
    end
  end
end

-- appendHistory adds entries to id's history, keeping the newest cap.
local function appendHistory(id, entries, cap)
  local old = redis.call("HGET", ik(id), "hi")
  local text = table.concat(entries, "\n")
  if old then text = old .. "\n" .. text end
  local _, lines = string.gsub(text, "\n", "")
  local cut = 0
  for _ = 1, lines + 1 - cap do
    cut = string.find(text, "\n", cut + 1, true)
  end
  if cut > 0 then text = string.sub(text, cut + 1) end
  redis.call("HSET", ik(id), "hi", text)
end

-- applyLists reads, from ARGV starting at i, what a commit writes:
-- history (a count, the entries, then the history cap), work (a count,
-- then kind, action, due, value for each) and changes (a count, then
-- the entries). It returns the next index.
local function applyLists(id, i)
  local n = tonumber(ARGV[i]); i = i + 1
  local entries = {}
  for k = 1, n do entries[k] = ARGV[i]; i = i + 1 end
  local cap = tonumber(ARGV[i]); i = i + 1
  if n > 0 then appendHistory(id, entries, cap) end
  n = tonumber(ARGV[i]); i = i + 1
  for k = 1, n do
    addWork(id, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3])
    i = i + 4
  end
  n = tonumber(ARGV[i]); i = i + 1
  for k = 1, n do
    redis.call("XADD", P .. "changes", "MAXLEN", "~", "10000", "*", "c", ARGV[i])
    i = i + 1
  end
  return i
end
