-- prelude.lua: shared by every script (prepended by redisstore.go).
--
-- ARGV[1] is the key prefix of one partition, hash tag included, such as
-- "fsmc:{7}:". Every key a script touches is built from it, so all of
-- them live in one Cluster slot; KEYS[1] is that partition's sequence key,
-- declared for routing.
--
-- Per partition:  P.."seq"       counter: arrival order and lease fences
--                 P.."leases"    zset unit -> lease expiry (ms)
--                 P.."tokens"    hash unit -> "fence|member" of the current lease
--                 P.."changes"   stream of changelog entries
--                 P.."ready:"..p zset unit -> due (ms), for priority p 0-9
-- Per instance:   P.."i:"..id    hash v (version) st (status) pr h (machine hash) d (data)
--                 P.."q:"..id    zset member -> due: instance work, FIFO by (due, member)
--                 P.."w:"..id    hash member -> work JSON
--                 P.."t:"..id    hash member -> task work JSON
--                 P.."h:"..id    list of history JSON, capped
-- Units (what is claimed): "q|"..id for the head of an instance's queue,
-- "t|"..action.."|"..member.."|"..id for a task attempt.
local P = ARGV[1]
local ACTIVE = "1"

local function ik(kind, id) return P .. kind .. ":" .. id end
local function ready(prio) return P .. "ready:" .. prio end

local function prioOf(id)
  return tonumber(redis.call("HGET", ik("i", id), "pr") or "0")
end

-- reschedule puts the head of id's queue in its ready set when the
-- instance is active, its queue non-empty and not leased.
local function reschedule(id)
  local unit = "q|" .. id
  local prio = prioOf(id)
  redis.call("ZREM", ready(prio), unit)
  if redis.call("ZSCORE", P .. "leases", unit) then return end
  if redis.call("HGET", ik("i", id), "st") ~= ACTIVE then return end
  local head = redis.call("ZRANGE", ik("q", id), 0, 0, "WITHSCORES")
  if #head == 0 then return end
  redis.call("ZADD", ready(prio), head[2], unit)
end

-- addWork stores one item of work: kind "task" or other, its action,
-- due time (ms) and JSON.
local function addWork(id, kind, action, due, json)
  local member = string.format("%016x", redis.call("INCR", P .. "seq"))
  if kind == "task" then
    redis.call("HSET", ik("t", id), member, json)
    redis.call("ZADD", ready(prioOf(id)), due, "t|" .. action .. "|" .. member .. "|" .. id)
  else
    redis.call("HSET", ik("w", id), member, json)
    redis.call("ZADD", ik("q", id), due, member)
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
    local json = redis.call("HGET", ik("t", id), member)
    if json then
      redis.call("ZADD", ready(prioOf(id)), cjson.decode(json).du, unit)
    end
  end
end

-- finish removes the work a leased unit stands for.
local function finish(unit)
  local _, leased = leaseOf(unit)
  unlease(unit)
  local kind, id, member = parseUnit(unit)
  if kind == "q" then
    redis.call("ZREM", ik("q", id), leased)
    redis.call("HDEL", ik("w", id), leased)
  else
    redis.call("HDEL", ik("t", id), member)
  end
end

-- dropAll removes all of an instance's pending work.
local function dropAll(id)
  local prio = prioOf(id)
  for _, member in ipairs(redis.call("HKEYS", ik("t", id))) do
    local json = redis.call("HGET", ik("t", id), member)
    local unit = "t|" .. cjson.decode(json).a .. "|" .. member .. "|" .. id
    redis.call("ZREM", ready(prio), unit)
    unlease(unit)
  end
  redis.call("DEL", ik("t", id), ik("q", id), ik("w", id))
  redis.call("ZREM", ready(prio), "q|" .. id)
end

-- apply reads, from ARGV starting at i, what a commit writes: history,
-- work and changes, each as a count followed by its items; then the
-- history cap. It returns the next index.
local function applyLists(id, i)
  local n = tonumber(ARGV[i]); i = i + 1
  for k = 1, n do redis.call("RPUSH", ik("h", id), ARGV[i]); i = i + 1 end
  local cap = tonumber(ARGV[i]); i = i + 1
  if n > 0 then redis.call("LTRIM", ik("h", id), -cap, -1) end
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
