-- prelude.lua: shared by every script (prepended to each script, or
-- the top of the function library; see scripts.go).
--
-- ARGV[1] is the key prefix of one partition, hash tag included, such as
-- "fsmc:{fsmc-7}:". Every key a script touches is built from it, so all
-- of them live in one Cluster slot; KEYS[1] is that partition's sequence
-- key, declared for routing.
--
-- Per partition:  P.."seq"       counter: work members (and the lease
--                                tokens of earlier builds)
--                 P.."leases"    zset unit -> lease expiry (ms), and PLACEHOLDER
--                 P.."tokens"    hash unit -> "token|member" of the current
--                                lease (token: the id of the claim call that
--                                took it; earlier builds took a number from
--                                seq, and some kept "|claim" after it), and
--                                PLACEHOLDER
--                 P.."changes"   stream of changelog entries
--                 P.."ready:"..p..":"..c  zset unit -> due (ms): the ready
--                                set of class c at priority p (0-9)
--                 P.."classes:"..p  zset class -> the earliest due time in
--                                its ready set at priority p, or earlier
--                                (see makeReady)
--                 P.."top"       the highest priority work was ever ready at
--                 P.."retain"    ms an ended instance is kept (SetRetention);
--                                absent: kept until deleted
-- Per instance, one hash P.."i:"..id (small values, so Redis keeps it as
-- a compact listpack while the instance is quiet):
--   v version   st status   pr priority   h machine id
--   d c f       state/visit/times, context, failure (written by Go only)
--   hi          history entries, oldest first, "\n"-separated, capped
--   "w:"..m     instance work m (events, timer firings, task results)
--   "t:"..m     pending task attempt m
-- (work fields alone have names longer than two bytes: load relies on
-- it to list them).
-- Work values start "due,kind,action" (see wire.go). Instance work runs
-- in order of due time, then arrival (m counts up).
-- Units (what is claimed): "q|"..id for the head of an instance's work,
-- "t|"..action.."|"..m.."|"..id for a task attempt. A unit's class is
-- what a worker needs to run it: the machine id h for instance work,
-- h.."#"..action for a task attempt. Ready sets are kept per class, so a
-- claim reads only the classes its worker runs, and work it cannot take
-- never hides work it can.
--
-- Every redis.call, and every string a script makes, costs: a script
-- reads an instance's hash once (load), changes the table, and writes
-- what changed in one HSET and one HDEL (save); the helpers below look
-- at field names by their bytes rather than cutting substrings. Numbers
-- that go back to Redis (due times, priorities) stay the strings they
-- came as: Lua and Redis turn a Lua number into text with printf, which
-- costs more than most redis.calls.
local P = ARGV[1]
local readied = false -- a unit went into a ready set (see makeReady)
-- The arguments of a claim (claimWork) are CA[CO + 2] to CA[CO + 9],
-- laid out as claim.lua's ARGV[2..9]: claim.lua's own ARGV (CO = 0), or
-- those a commit's ARGV ends with (see chain), read where they are
-- rather than copied into a table of their own. peeking: the claim only
-- reports what is due (claim.lua's "peek").
local CA, CO, peeking

-- The library functions the scripts use, as locals. A function
-- library's globals are an empty table that looks names up in Redis's,
-- so each use of a global name costs two table lookups and a metatable's;
-- a local costs none. They are bound on a call (bind(_G), see
-- scripts.go): while a library loads, Redis's globals are not there.
local call, find, sub, byte, format, gsub, gmatch
local tonumber, unpack, ipairs, type, setmetatable, rawset

-- NUM[text] is the number text (a count, a priority, the history cap)
-- is written as, as tonumber reads it: a table lookup once the text was
-- read, where tonumber costs a C call and a parse. The library keeps it
-- from call to call; it keeps texts of up to three bytes, so it stays
-- small. Made by bind (a library may not call setmetatable while it
-- loads).
local NUM
local NUM_READ = {__index = function(known, text)
  local n = tonumber(text)
  if n and #text <= 3 then rawset(known, text, n) end
  return n
end}

local function bind(G)
  call = G.redis.call
  find, sub, byte, format = G.string.find, G.string.sub, G.string.byte, G.string.format
  gsub, gmatch = G.string.gsub, G.string.gmatch
  tonumber, unpack, ipairs, type = G.tonumber, G.unpack, G.ipairs, G.type
  setmetatable, rawset = G.setmetatable, G.rawset
  NUM = setmetatable({}, NUM_READ)
end

-- K names the partition's own keys: K.leases is P.."leases", made on
-- its first use and kept, as the library keeps K from call to call
-- while the prefix stays the same (joining strings costs more than a
-- table lookup). RK keeps the names of ready sets the same way
-- (RK[prio][class], see ready).
local K, RK
local KEY_NAMES = {__index = function(k, name)
  local key = k[0] .. name
  rawset(k, name, key)
  return key
end}

-- ZADD_LT: this Redis has ZADD's LT flag (6.2 and later; the library
-- says so, as functions came with 7.0).
local ZADD_LT = false

-- begin readies a call: binds the library functions on the first, and
-- starts the key names afresh for a new prefix.
local function begin()
  if not call then bind(_G) end
  if not K or K[0] ~= P then
    K, RK = setmetatable({[0] = P}, KEY_NAMES), {}
  end
end
-- PLACEHOLDER is a member of P.."leases" (due at +inf) and a field of
-- P.."tokens" that no unit is: at 70 bytes, longer than Redis keeps in
-- a compact listpack (64 by default), it makes Redis keep both sets in
-- its hashed encodings. They churn: every claim adds a lease and every
-- commit removes one, and in a listpack each of those scans and moves
-- the whole set, which with a busy fleet's few dozen leases costs Redis
-- more than the rest of the claim's calls on them. Each claim writes it
-- again with its lease (no call of its own), so a set made afresh gets
-- it at once.
local PLACEHOLDER = "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~"

-- Statuses, as runtime.Status numbers them.
local ACTIVE, COMPLETED, CANCELLED = "1", "3", "4"
-- The bytes of "w", "q" and "t" (a function library's definitions may
-- not call the string library while it loads).
local BYTE_W, BYTE_Q, BYTE_T = 119, 113, 116

local function ik(id) return P .. "i:" .. id end
-- ready names the ready set of a class at a priority (a string, "0" to
-- "9"); classes names the index of a priority's classes.
local function ready(prio, class)
  local byClass = RK[prio]
  if not byClass then
    byClass = {}
    RK[prio] = byClass
  end
  local key = byClass[class]
  if not key then
    key = P .. "ready:" .. prio .. ":" .. class
    byClass[class] = key
  end
  return key
end
local CLASSES = {["0"] = "classes:0", ["1"] = "classes:1", ["2"] = "classes:2",
  ["3"] = "classes:3", ["4"] = "classes:4", ["5"] = "classes:5", ["6"] = "classes:6",
  ["7"] = "classes:7", ["8"] = "classes:8", ["9"] = "classes:9"}
local function classes(prio) return K[CLASSES[prio]] end

-- PRIO[p] is priority p (a number) as a string.
local PRIO = {[0] = "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

-- Tables cost most when they grow: Lua rebuilds a table each time it
-- doubles, and a constructor sizes it once. So an instance's fields go
-- in a table made with room for the eight fields an instance may have
-- besides its work (a quiet instance has one or two of work: one
-- rebuild), and its changes in arrays made, on their first use, with
-- room for a commit's. Making a table costs from a third to most of
-- what a redis.call does, so a claim, which only reads its instance,
-- makes none of the arrays. A function call, and a table access, cost
-- Redis's Lua many times what a local does, so the loops over an
-- instance's work read lists of its work fields (newInstance), not
-- every field through a helper.

-- newInstance makes the table of instance id, stored at key, whose
-- fields (from Redis) are f: of them, wf lists the names of its
-- instance work ("w:"..m) and tf of its task attempts ("t:"..m). A
-- work field removed since it was listed stays listed, with no value
-- in f, so the loops over its work read only those lists, and check.
local NONE = {} -- the lists of an instance without work of a kind; never added to
local function newInstance(id, key, f, wf, tf)
  return {
    id = id, key = key, f = f, prio0 = f.pr or "0", st0 = f.st, wf = wf, tf = tf,
    -- args: field, value, ... for HSET (n of them); dels: fields to HDEL
    -- (nd of them). Each is made on its first use (put, remove): a claim
    -- only reads its instance.
    args = nil, n = 0, dels = nil, nd = 0,
  }
end

-- fieldTable returns an empty table sized for an instance's fields but
-- its work (their names start out with no value).
local function fieldTable()
  return {v = nil, st = nil, pr = nil, h = nil, d = nil, c = nil, f = nil, hi = nil}
end

-- load reads instance id, or returns nil when there is none.
local function load(id)
  local key = ik(id)
  local raw = call("HGETALL", key)
  if #raw == 0 then return nil end
  local f, wf, tf = fieldTable(), NONE, NONE
  for k = 1, #raw, 2 do
    local name = raw[k]
    f[name] = raw[k + 1]
    -- Only work fields have names longer than two bytes.
    if #name > 2 then
      if byte(name) == BYTE_W then
        if wf == NONE then wf = {} end
        wf[#wf + 1] = name
      else
        if tf == NONE then tf = {} end
        tf[#tf + 1] = name
      end
    end
  end
  return newInstance(id, key, f, wf, tf)
end

-- loadTask reads of instance id only what a claim of its task attempt
-- member needs (see pending and lease), or returns nil when there is
-- none: its work lists are left empty, so it is not for writing.
local function loadTask(id, member)
  local key = ik(id)
  local field = "t:" .. member
  local raw = call("HMGET", key, "v", "st", "pr", "d", "c", "f", "h", field)
  if not raw[1] then return nil end
  local f = {v = raw[1], st = raw[2] or nil, pr = raw[3] or nil, d = raw[4] or nil,
    c = raw[5] or nil, f = raw[6] or nil, h = raw[7] or nil}
  f[field] = raw[8] or nil
  return newInstance(id, key, f, NONE, NONE)
end

-- put sets a field; one that already holds the value is not written
-- again (a string compare costs next to nothing in Lua, and every field
-- HSET writes costs Redis a search of the listpack).
local function put(inst, field, value)
  if inst.f[field] == value then return end
  inst.f[field] = value
  local n, args = inst.n, inst.args
  if not args then
    args = {nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}
    inst.args = args
  end
  args[n + 1], args[n + 2], inst.n = field, value, n + 2
end

local function remove(inst, field)
  inst.f[field] = nil
  if not inst.dels then inst.dels = {nil, nil, nil, nil} end
  inst.nd = inst.nd + 1
  inst.dels[inst.nd] = field
end

-- save writes what put and remove changed: every put in one HSET (a
-- field put twice takes its last value), then one HDEL of the fields
-- removed and not put again.
local function save(inst)
  if inst.n > 0 then call("HSET", inst.key, unpack(inst.args, 1, inst.n)) end
  local dels, k = inst.dels, 0
  for i = 1, inst.nd do
    if inst.f[dels[i]] == nil then
      k = k + 1
      dels[k] = dels[i]
    end
  end
  if k > 0 then call("HDEL", inst.key, unpack(dels, 1, k)) end
  inst.n, inst.nd = 0, 0
end

local function prioOf(inst) return inst.f.pr or "0" end

-- dueOf reads the due time (ms, as text) of a work value: its first
-- number. (Plain string.find and string.sub cost less than patterns.)
local function dueOf(value)
  local comma = find(value, ",", 1, true)
  if comma then return sub(value, 1, comma - 1) end
  return value
end

-- actionOf reads the action of a work value, its third number (a record
-- leaves out trailing zeros).
local function actionOf(value)
  local a = find(value, ",", 1, true)
  local b = a and find(value, ",", a + 1, true)
  if not b then return "0" end
  local c = find(value, ",", b + 1, true)
  return sub(value, b + 1, (c or 0) - 1)
end

-- taskUnitOf names the unit of task attempt member (value: its work
-- value) of instance id, of machine id h, and returns its class.
local function taskUnitOf(id, h, member, value)
  local action = actionOf(value)
  return "t|" .. action .. "|" .. member .. "|" .. id, h .. "#" .. action
end

-- taskUnit names the unit of an instance's task attempt (its field
-- "t:"..member holds value), and returns its class.
local function taskUnit(inst, member, value)
  return taskUnitOf(inst.id, inst.f.h, member, value)
end

-- head returns the member and due time (a number, and as text) of the
-- instance's next instance work, or nil when it has none.
local function head(inst)
  local best, bestDue, bestText
  local f, wf = inst.f, inst.wf
  for k = 1, #wf do
    local value = f[wf[k]]
    if value then
      local text = dueOf(value)
      local due = tonumber(text)
      if not best or due < bestDue or (due == bestDue and tonumber(sub(wf[k], 3)) < tonumber(best)) then
        best, bestDue, bestText = sub(wf[k], 3), due, text
      end
    end
  end
  return best, bestDue, bestText
end

-- makeReady adds a unit of class, due at due (text), to its ready set
-- at prio, keeping P.."top" and the index of classes. An index entry is
-- never later than its ready set's earliest due time, and may be
-- earlier: a claim that takes work from the set puts the entry at the
-- set's next due time, but other removals (an instance that ends or
-- parks) leave it, for the next claim or nextDue that reads the set to
-- bring it forward (or drop it, when the set is empty).
local function makeReady(prio, class, due, unit)
  -- readied: the unit when it is the script's only one (see chain).
  if readied then readied = true else readied = unit end
  call("ZADD", ready(prio, class), due, unit)
  local index = classes(prio)
  if ZADD_LT then
    call("ZADD", index, "LT", due, class)
  else
    local first = call("ZSCORE", index, class)
    if not first or tonumber(due) < tonumber(first) then call("ZADD", index, due, class) end
  end
  if prio ~= "0" and NUM[prio] > NUM[call("GET", K.top) or "0"] then
    call("SET", K.top, prio)
  end
end

-- unready takes a unit of class out of its ready set at prio.
local function unready(prio, class, unit) call("ZREM", ready(prio, class), unit) end

-- readyTask puts the instance's task attempt member (its field "t:"..member
-- holds value) in its ready set.
local function readyTask(inst, member, value)
  local unit, class = taskUnit(inst, member, value)
  makeReady(prioOf(inst), class, dueOf(value), unit)
end

-- queueRuns reports whether an instance's work runs: it is active, or
-- it has completed and its queue holds only the events it kept
-- (keptAtEnd; runtime.QueueRuns).
local function queueRuns(inst)
  local st = inst.f.st
  return st == ACTIVE or st == COMPLETED
end

-- reschedule puts the head of the instance's work in its ready set when
-- its work runs (queueRuns), it has instance work, and that work is not
-- leased. free: the caller knows the instance's "q|" unit is neither
-- leased nor ready (it held its lease, or the instance is new). No task
-- attempt of an instance that is not active is ready: they leave the
-- ready set, and come back (unless leased) when it is active again.
local function reschedule(inst, free)
  local unit, class = "q|" .. inst.id, inst.f.h
  local prio = prioOf(inst)
  local active = inst.f.st == ACTIVE
  if not active or inst.st0 ~= ACTIVE then
    local f, tf = inst.f, inst.tf
    for k = 1, #tf do
      local value = f[tf[k]]
      if value then
        local member = sub(tf[k], 3)
        local task, taskClass = taskUnit(inst, member, value)
        if not active then
          unready(inst.prio0, taskClass, task)
        elseif not call("ZSCORE", K.leases, task) then
          readyTask(inst, member, value)
        end
      end
    end
  end
  inst.st0 = inst.f.st
  local _, due, dueText = head(inst)
  local want = due and queueRuns(inst)
  if want and not free and call("ZSCORE", K.leases, unit) then
    want = false
  end
  if want then
    makeReady(prio, class, dueText, unit)
  end
  if not free and (not want or prio ~= inst.prio0) then
    unready(inst.prio0, class, unit)
  end
  inst.prio0 = prio
end

-- addWork stores items of work, from ARGV starting at i: a count, then
-- kind ("task" or other) and value for each. It returns the next index.
local function addWork(inst, i)
  local n = NUM[ARGV[i]]
  if n == 0 then return i + 1 end
  local last = call("INCRBY", K.seq, ARGV[i])
  i = i + 1
  for k = 1, n do
    local kind, value = ARGV[i], ARGV[i + 1]
    local member = format("%d", last - n + k)
    if kind == "task" then
      local field = "t:" .. member
      put(inst, field, value)
      if inst.tf == NONE then inst.tf = {} end
      inst.tf[#inst.tf + 1] = field
      readyTask(inst, member, value)
    else
      local field = "w:" .. member
      put(inst, field, value)
      if inst.wf == NONE then inst.wf = {} end
      inst.wf[#inst.wf + 1] = field
    end
    i = i + 2
  end
  return i
end

-- parseUnit returns kind ("q" or "t"), instance id and, for a task
-- attempt, member.
local function parseUnit(unit)
  if byte(unit, 1) == BYTE_Q then
    return "q", sub(unit, 3), nil
  end
  local a = find(unit, "|", 3, true)
  local m = find(unit, "|", a + 1, true)
  return "t", sub(unit, m + 1), sub(unit, a + 1, m - 1)
end

-- done is a script's success: "ready" when it put work in a ready set
-- (workers should look, and Go pokes them), else "ok".
local function done()
  if readied then return "ready" end
  return "ok"
end

-- allowing reads a list of allowed items ("\n"-separated) into a set,
-- or nil for "*" (any item). A worker sends the same lists with every
-- claim, so the library keeps the sets it made (a few: ALLOWED_MAX,
-- then it starts again), and a claim reads a list only when it is new.
local ALLOWED, allowedCount, ALLOWED_MAX = {}, 0, 64
local function allowing(list)
  if list == "*" then return nil end
  local set = ALLOWED[list]
  if set then return set end
  set = {}
  for line in gmatch(list, "[^\n]+") do set[line] = true end
  if allowedCount == ALLOWED_MAX then ALLOWED, allowedCount = {}, 0 end
  ALLOWED[list], allowedCount = set, allowedCount + 1
  return set
end

-- runs reports whether a worker that runs machines and actions (sets
-- from allowing; see claim.lua's ARGV[4] and ARGV[5]) runs the units of
-- class.
local function runs(class, machines, actions)
  local hash = find(class, "#", 1, true)
  if not hash then return machines == nil or machines[class] == true end
  return (machines == nil or machines[sub(class, 1, hash - 1)] == true) and (actions == nil or actions[class] == true)
end

-- pending reports whether a unit of an instance is work it still has:
-- instance work ("q|") whose queue runs (queueRuns), or the task
-- attempt of an active instance. A ready unit always is; a claim checks,
-- and drops one that is not rather than fail on it.
local function pending(inst, kind, member)
  if not inst then return false end
  if kind == "q" then return queueRuns(inst) and head(inst) ~= nil end
  return inst.f.st == ACTIVE and inst.f["t:" .. member] ~= nil
end

-- lockKey names the instance's Redlock key (see lock.go lockName).
local function lockKey(id) return P .. "lock:" .. id end

-- unlock frees the instance's Redlock if a claim took it for the lease
-- token (claim.lua's ARGV[9]); a lock anyone else holds has another value.
local function unlock(id, token)
  if call("GET", lockKey(id)) == token then call("DEL", lockKey(id)) end
end

-- leaseOf returns a unit's lease token and the member it holds.
local function leaseOf(unit)
  local v = call("HGET", K.tokens, unit)
  if not v then return nil, nil end
  local bar = find(v, "|", 1, true)
  local bar2 = find(v, "|", bar + 1, true)
  if not bar2 then return sub(v, 1, bar - 1), sub(v, bar + 1) end
  return sub(v, 1, bar - 1), sub(v, bar + 1, bar2 - 1)
end

local function unlease(unit)
  call("ZREM", K.leases, unit)
  call("HDEL", K.tokens, unit)
end

-- giveBack makes a unit claimable again (a release or an expired lease).
local function giveBack(unit)
  unlease(unit)
  local kind, id, member = parseUnit(unit)
  local inst = load(id)
  if not inst then return end
  if kind == "q" then
    reschedule(inst, true)
  elseif inst.f["t:" .. member] and inst.f.st == ACTIVE then
    readyTask(inst, member, inst.f["t:" .. member])
  end
end

-- finish removes the work a leased unit stands for (member: the one the
-- lease holds, its task attempt's for a task unit) from the instance;
-- the caller saves it.
local function finish(inst, unit, member)
  unlease(unit)
  if byte(unit) == BYTE_Q then
    remove(inst, "w:" .. member)
  else
    remove(inst, "t:" .. member)
  end
end

-- WORK_EVENT and TIMER are the kinds of an event and of a timer firing
-- in a work value (runtime.WorkEvent, runtime.WorkTimer).
local WORK_EVENT, TIMER = "1", "2"

-- part returns the nth number of a work value ("due,kind,action,visit,
-- ...", see wire.go encodeWork), as text.
local function part(value, n)
  local from = 1
  for _ = 2, n do
    local comma = find(value, ",", from, true)
    if not comma then return "" end
    from = comma + 1
  end
  local to = find(value, ",", from, true)
  return sub(value, from, (to or 0) - 1)
end

-- keptAtEnd reports whether a completed instance keeps a work value: an
-- event sent from outside (visit 0), which the engine then records as
-- unhandled in the final state (runtime.KeptAtEnd).
local function keptAtEnd(value)
  return part(value, 2) == WORK_EVENT and part(value, 4) == "0"
end

-- dropAll removes an instance's pending work as it ends, but for the
-- events a completed instance keeps (keptAtEnd). The caller has put the
-- new status and finished the unit it committed.
local function dropAll(inst)
  local prio = prioOf(inst)
  local f, tf, wf = inst.f, inst.tf, inst.wf
  for k = 1, #tf do
    local value = f[tf[k]]
    if value then
      local unit, class = taskUnit(inst, sub(tf[k], 3), value)
      unready(prio, class, unit)
      unlease(unit)
      remove(inst, tf[k])
    end
  end
  local completed = f.st == COMPLETED
  for k = 1, #wf do
    local value = f[wf[k]]
    if value and not (completed and keptAtEnd(value)) then remove(inst, wf[k]) end
  end
end

-- dropTimers removes the instance's queued timer firings: it has
-- entered a state, and they belong to the visit it left. The caller has
-- finished the unit it committed, so none of them is leased.
local function dropTimers(inst)
  local f, wf = inst.f, inst.wf
  for k = 1, #wf do
    local value = f[wf[k]]
    if value and part(value, 2) == TIMER then remove(inst, wf[k]) end
  end
end

-- writeData sets the fields only Go reads, from ARGV[i..i+2] (d, c, f);
-- an empty value removes its field.
local DATA_FIELDS = {"d", "c", "f"}
local function writeData(inst, i)
  for k = 1, 3 do
    local field, value = DATA_FIELDS[k], ARGV[i + k - 1]
    if value == "" then
      if inst.f[field] then remove(inst, field) end
    else
      put(inst, field, value)
    end
  end
end

-- cappedHistory returns the newest cap of the history entries in text
-- ("\n"-separated). Entries are never empty, so a text of at most 2*cap
-- bytes holds at most cap of them and needs no counting.
local function cappedHistory(text, cap)
  if #text <= 2 * cap then return text end
  local _, lines = gsub(text, "\n", "")
  local cut = 0
  for _ = 1, lines + 1 - cap do
    cut = find(text, "\n", cut + 1, true)
  end
  if cut > 0 then text = sub(text, cut + 1) end
  return text
end

-- appendHistory adds entries ("\n"-separated) to the instance's
-- history, keeping the newest cap.
local function appendHistory(inst, entries, cap)
  local text = entries
  if inst.f.hi then text = inst.f.hi .. "\n" .. text end
  put(inst, "hi", cappedHistory(text, cap))
end

-- expireEnded gives an instance that has just completed or been
-- cancelled (its hash, key) the deployment's retention: Redis removes
-- the hash when that has passed. (Nothing writes to an ended instance
-- again.)
local function expireEnded(key)
  local ms = call("GET", K.retain)
  if ms then call("PEXPIRE", key, ms) end
end

-- addChanges appends changelog entries from ARGV starting at i: a
-- count, then the entries. It returns the next index.
local function addChanges(i)
  local n = NUM[ARGV[i]]
  for k = 1, n do
    call("XADD", K.changes, "MAXLEN", "~", "10000", "*", "c", ARGV[i + k])
  end
  return i + n + 1
end

-- readHistory reads history from ARGV starting at i (a count, the
-- entries, then the history cap): it returns the entries as one text
-- ("\n"-separated), or nil for none, the cap, and the next index.
local function readHistory(i)
  local n = NUM[ARGV[i]]
  local cap = NUM[ARGV[i + n + 1]]
  if n == 0 then return nil, cap, i + 2 end
  local entries = ARGV[i + 1]
  for k = 2, n do entries = entries .. "\n" .. ARGV[i + k] end
  return entries, cap, i + n + 2
end

-- applyLists reads, from ARGV starting at i, what a commit writes:
-- history (a count, the entries, then the history cap), work (see
-- addWork) and changes (a count, then the entries); the caller saves
-- the instance. It returns the next index.
local function applyLists(inst, i)
  local entries, cap
  entries, cap, i = readHistory(i)
  if entries then appendHistory(inst, entries, cap) end
  i = addWork(inst, i)
  return addChanges(i)
end

-- firstDue returns the earliest due time (text) in the ready set of
-- class at prio, or nil when it is empty, and corrects the class's entry
-- in the index of classes (see makeReady): bound is its score there.
local function firstDue(prio, class, bound)
  local first = call("ZRANGE", ready(prio, class), "0", "0", "WITHSCORES")
  if #first == 0 then
    call("ZREM", classes(prio), class)
    return nil
  end
  if first[2] ~= bound then call("ZADD", classes(prio), "XX", first[2], class) end
  return first[2]
end

-- The steps of a claim (claim.lua), defined here so that a function
-- library makes them once rather than on every call. They read the
-- claim's arguments from CA (see CO).

-- lease leases a unit of class of the instance inst (pending: see
-- pending), at priority prio, until the claim's expiry (CA[CO + 3]).
local function lease(inst, unit, kind, member, prio, class)
  -- The claim's id is the lease's token: each claim call has its own,
  -- and takes at most one lease.
  local token = CA[CO + 8]
  if kind == "q" and CA[CO + 6] == "1" and not call("SET", lockKey(inst.id), token, "NX", "PX", CA[CO + 7]) then
    return nil
  end
  unready(prio, class, unit)
  local value
  if kind == "q" then
    member = head(inst)
    value = inst.f["w:" .. member]
  else
    value = inst.f["t:" .. member]
  end
  call("ZADD", K.leases, CA[CO + 3], unit, "+inf", PLACEHOLDER)
  call("HSET", K.tokens, unit, token .. "|" .. member, PLACEHOLDER, "")
  local f = inst.f
  return {unit, member, value, token, prio, f.v, f.st, f.pr or "0", f.d or "", f.c or "", f.f or "", f.h, "0"}
end

-- moreDue reports whether work of another class than class is due at
-- priority prio or lower (higher priorities had nothing this worker
-- could take), for another worker to look. alone: the claim read that
-- no other class has work due at prio.
local function moreDue(prio, class, alone)
  local from = prio
  if alone then from = prio - 1 end
  for p = from, 0, -1 do
    for _, other in ipairs(call("ZRANGEBYSCORE", classes(PRIO[p]), "-inf", CA[CO + 2], "LIMIT", "0", "2")) do
      if p ~= prio or other ~= class then return true end
    end
  end
  return false
end

-- placeClass sets the index entry of class at prio (bound: its score
-- there) to the earliest due time of its ready set, head (text) when
-- the caller knows it, and drops it when the set is empty.
local function placeClass(prio, class, bound, head)
  if not head then
    firstDue(prio, class, bound)
  elseif head ~= bound then
    call("ZADD", classes(prio), "XX", head, class)
  end
end

-- claimClass claims the first due unit of class at prio whose instance
-- is free (or, peeking, reports that there is one); bound is the
-- class's score in the index, and alone says whether it is the only
-- class with work due at prio. A few units are read: the first is nearly
-- always free, and every unit read costs. The class's index entry then
-- gives its earliest due time again, so that classes take their turns
-- in due order; a class alone needs no turn, and a claim that takes its
-- work leaves the entry early, which costs nothing until another class
-- has work due, and is corrected by the first claim that finds the
-- class's work not due.
local function claimClass(prio, class, bound, alone)
  local key, prioText, nowText = ready(PRIO[prio], class), PRIO[prio], CA[CO + 2]
  -- The units' due times are read only to keep the class's turn.
  local units, step = nil, 2
  if alone then
    units, step = call("ZRANGEBYSCORE", key, "-inf", nowText, "LIMIT", "0", "4"), 1
  else
    units = call("ZRANGEBYSCORE", key, "-inf", nowText, "WITHSCORES", "LIMIT", "0", "4")
  end
  local kept -- the due time of the first unit read that stays (its instance is locked)
  for k = 1, #units, step do
    local unit = units[k]
    local kind, id, member = parseUnit(unit)
    local inst
    if kind == "t" then inst = loadTask(id, member) else inst = load(id) end
    if not pending(inst, kind, member) then
      unready(prioText, class, unit)
    elseif peeking then
      return {prio, tonumber(alone and bound or units[k + 1])}
    else
      local claimed = lease(inst, unit, kind, member, prioText, class)
      if claimed then
        if not alone then placeClass(prioText, class, bound, kept or units[k + 3]) end
        if units[k + step] then
          -- More of the class is due. When it is a task's, and the only
          -- class with work due at the lowest priority, that is task
          -- attempts alone: higher priorities had nothing this worker
          -- could take.
          if alone and prio == 0 and kind == "t" then claimed[13] = "t" else claimed[13] = "1" end
        elseif moreDue(prio, class, alone) then
          claimed[13] = "1"
        end
        return claimed
      end
      if not alone then kept = kept or units[k + 1] end
    end
  end
  placeClass(prioText, class, bound, kept)
  return nil
end

-- nextDue returns the earliest due time (ms) of work a worker with
-- machines and actions (see claim.lua's ARGV[4] and ARGV[5]) may claim,
-- or of an expiring lease; -1 for none. Work the worker cannot take
-- (another worker's machines or actions) does not count, or the worker
-- would wake for it again and again. The index of classes gives each
-- class's earliest due time or an earlier one, so its entries are read
-- in order until they are later than the best found. top: the
-- partition's highest priority (P.."top"), when the caller has read it.
local function nextDue(machines, actions, top)
  machines, actions = allowing(machines), allowing(actions)
  local best = -1
  local function consider(t)
    t = tonumber(t)
    if best < 0 or t < best then best = t end
  end
  for prio = 0, top or tonumber(call("GET", K.top) or "0") do
    local entries = call("ZRANGE", classes(PRIO[prio]), "0", "-1", "WITHSCORES")
    for k = 1, #entries, 2 do
      if best >= 0 and tonumber(entries[k + 1]) >= best then break end
      if runs(entries[k], machines, actions) then
        local first = firstDue(PRIO[prio], entries[k], entries[k + 1])
        if first then consider(first) end
      end
    end
  end
  local first = call("ZRANGE", K.leases, "0", "0", "WITHSCORES")
  if #first > 0 and first[1] ~= PLACEHOLDER then consider(first[2]) end
  return best
end

-- claimWork is a claim (claim.lua), with its arguments in CA (see CO):
-- mode ("peek", "claim" or "instance"), the lowest priority to consider
-- (text), the instance to claim (mode "instance"), and whether to say
-- when to look again when there is nothing to claim (askNext, "1").
local function claimWork(mode, minPrioText, instance, askNext)
  local nowText = CA[CO + 2]
  peeking = mode == "peek"

  -- Expired leases make their work claimable again; a claim whose
  -- worker's store looked at them lately (CA[CO + 9] = "1") leaves them
  -- for the next look.
  if CA[CO + 9] ~= "1" then
    local expired = call("ZRANGEBYSCORE", K.leases, "-inf", nowText)
    for k = 1, #expired do giveBack(expired[k]) end
  end

  local machines, actions = allowing(CA[CO + 4]), allowing(CA[CO + 5])
  if mode == "instance" then
    local now = tonumber(nowText)
    local inst = load(instance)
    if not inst then return "notfound" end
    local prio = prioOf(inst)
    local units = {{"q|" .. inst.id, inst.f.h, "q"}}
    local tf = inst.tf
    for k = 1, #tf do
      local value = inst.f[tf[k]]
      if value then
        local member = sub(tf[k], 3)
        local unit, class = taskUnit(inst, member, value)
        units[#units + 1] = {unit, class, "t", member}
      end
    end
    for _, u in ipairs(units) do
      local unit, class, kind, member = u[1], u[2], u[3], u[4]
      local due = call("ZSCORE", ready(prio, class), unit)
      if due and tonumber(due) <= now and runs(class, machines, actions) and pending(inst, kind, member) then
        local claimed = lease(inst, unit, kind, member, prio, class)
        if claimed then return claimed end
      end
    end
    return nil
  end

  -- Priorities from the highest; in each, the classes this worker runs
  -- whose work is due, earliest first.
  local topText = call("GET", K.top) or "0"
  local top = NUM[topText]
  for prio = top, NUM[minPrioText], -1 do
    local entries = call("ZRANGEBYSCORE", classes(PRIO[prio]), "-inf", nowText, "WITHSCORES")
    for k = 1, #entries, 2 do
      if runs(entries[k], machines, actions) then
        local claimed = claimClass(prio, entries[k], entries[k + 1], #entries == 2)
        if claimed then return claimed end
      end
    end
  end
  if peeking then return -1 end
  -- Nothing to claim: when asked, say when to look again, which saves
  -- the worker asking (nextdue.lua) before it waits.
  if askNext == "1" then return nextDue(CA[CO + 4], CA[CO + 5], top) end
  return nil
end

-- chain ends a script that finished a worker's work (commit.lua,
-- complete.lua). When the worker also asked for its next work, the
-- arguments of that claim follow the script's own, from ARGV[i] on, as
-- claim.lua's ARGV[2..9] (a claim of any priority, which says when to
-- look again when it finds nothing): it claims, and returns {the
-- script's result, the claim's}. Otherwise it returns the script's
-- result (done). A unit the script made ready and the claim then took
-- needs no wake-up.
local function chain(i)
  if ARGV[i] == nil then return done() end
  CA, CO = ARGV, i - 2
  local claimed = claimWork("claim", "0", nil, "1")
  if type(claimed) == "table" and claimed[1] == readied then readied = false end
  return {done(), claimed}
end
