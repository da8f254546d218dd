-- claim.lua: lease the most urgent due work of one partition, or (with
-- ARGV[6] = "peek") only report the highest priority that has due work.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] now (ms); ARGV[3] the lease's expiry (ms);
-- ARGV[4]  allowed machine ids, "\n"-separated, or "*";
-- ARGV[5]  runnable actions as "id#action" lines, or "*";
-- ARGV[6]  "peek", "claim", or "instance" (claim only instance ARGV[8]);
-- ARGV[7]  the lowest priority to consider; ARGV[8] instance id;
-- ARGV[9]  "1": instance work also takes the instance's Redlock here
--          (the lock lives on this Redis), for ARGV[10] ms, with the
--          lease token as its value; work of an instance whose lock
--          someone else holds is left for later;
-- ARGV[11] "1": when there is nothing to claim, return when to look again
-- Returns the priority (peek; -1 for none), or {unit, member, work value,
-- token, the instance's priority, and the instance's fields v, st, pr, d,
-- c, f, h (the engine need not load it), and "1" if other work was due
-- (another worker should look) or "0"}, or when there is nothing to
-- claim, nil, or with ARGV[11] the next due time (as nextdue.lua).
local nowText, until_, mode, minPrio = ARGV[2], ARGV[3], ARGV[6], tonumber(ARGV[7])
local now = tonumber(nowText)

-- Expired leases make their work claimable again.
for _, unit in ipairs(call("ZRANGEBYSCORE", P .. "leases", "-inf", nowText)) do
  giveBack(unit)
end

-- lease leases a unit of instance id (inst: the instance, if loaded).
local function lease(id, inst, unit, kind, member, prio)
  local token = format("%d", call("INCR", P .. "seq"))
  if kind == "q" and ARGV[9] == "1" and not call("SET", lockKey(id), token, "NX", "PX", ARGV[10]) then
    return nil
  end
  call("ZREM", ready(prio), unit)
  inst = inst or load(id)
  local value
  if kind == "q" then
    member = head(inst) -- a ready "q|" unit means the instance has work
    value = inst.f["w:" .. member]
  else
    value = inst.f["t:" .. member]
  end
  call("ZADD", P .. "leases", until_, unit)
  call("HSET", P .. "tokens", unit, token .. "|" .. member)
  local f = inst.f
  return {unit, member, value, token, prio, f.v, f.st, f.pr or "0", f.d or "", f.c or "", f.f or "", f.h, "0"}
end

-- moreDue reports whether work is due besides the unit just leased from
-- units (the page it was read in) at priority prio; higher priorities
-- had nothing this worker could take.
local function moreDue(prio, units)
  if #units > 1 then return true end
  for p = prio - 1, 0, -1 do
    if #call("ZRANGEBYSCORE", ready(PRIO[p]), "-inf", nowText, "LIMIT", "0", "1") > 0 then return true end
  end
  return #call("ZRANGEBYSCORE", ready(PRIO[prio]), "-inf", nowText, "LIMIT", "0", "1") > 0
end

if mode == "instance" then
  local inst = load(ARGV[8])
  if not inst then return "notfound" end
  local prio = prioOf(inst)
  local units = {"q|" .. inst.id}
  for f, value in pairs(inst.f) do
    if workKind(f) == "t" then
      units[#units + 1] = taskUnit(inst.id, sub(f, 3), value)
    end
  end
  for _, unit in ipairs(units) do
    local due = call("ZSCORE", ready(prio), unit)
    local kind, _, member, action = parseUnit(unit)
    if due and tonumber(due) <= now and eligible(inst.f.st, inst.f.h, kind, action, ARGV[4], ARGV[5]) then
      local claimed = lease(inst.id, inst, unit, kind, member, prio)
      if claimed then return claimed end
    end
  end
  return nil
end

-- Due units are read a few at a time (the first is nearly always
-- eligible, and every unit read costs), up to 100 per priority.
local top = tonumber(call("GET", P .. "top") or "0")
for prio = top, minPrio, -1 do
  for page = 0, 24 do
    local units = call("ZRANGEBYSCORE", ready(PRIO[prio]), "-inf", nowText, "LIMIT", page == 0 and "0" or page * 4, "4")
    for _, unit in ipairs(units) do
      if claimable(unit, ARGV[4], ARGV[5]) then
        if mode == "peek" then return prio end
        local kind, id, member = parseUnit(unit)
        local claimed = lease(id, nil, unit, kind, member, PRIO[prio])
        if claimed then
          if moreDue(prio, units) then claimed[13] = "1" end
          return claimed
        end
      end
    end
    if #units < 4 then break end
  end
end
if mode == "peek" then return -1 end
-- Nothing to claim: when asked, say when to look again, which saves
-- the worker asking (nextdue.lua) before it waits.
if ARGV[11] == "1" then return nextDue(ARGV[4], ARGV[5]) end
return nil
