-- claim.lua: lease the most urgent due work of one partition, or (with
-- ARGV[6] = "peek") only report the highest priority that has due work,
-- and the due time of the earliest there.
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
-- ARGV[12] the claim's id, kept with the lease, so that a claim whose
--          reply is lost can give back what it leased (lease.lua abandon)
-- Returns {priority, due time} (peek; -1 for none), or {unit, member, work value,
-- token, the instance's priority, and the instance's fields v, st, pr, d,
-- c, f, h (the engine need not load it), and "1" if other work was due
-- (another worker should look) or "0"}, or when there is nothing to
-- claim, nil, or with ARGV[11] the next due time (as nextdue.lua).
local nowText, mode, minPrio = ARGV[2], ARGV[6], tonumber(ARGV[7])
local now = tonumber(nowText)

-- Expired leases make their work claimable again.
for _, unit in ipairs(call("ZRANGEBYSCORE", P .. "leases", "-inf", nowText)) do
  giveBack(unit)
end

local machines, actions = allowing(ARGV[4]), allowing(ARGV[5])
-- Its steps (lease, claimClass, ...) are in prelude.lua.

if mode == "instance" then
  local inst = load(ARGV[8])
  if not inst then return "notfound" end
  local prio = prioOf(inst)
  local units = {{"q|" .. inst.id, inst.f.h, "q"}}
  for f, value in pairs(inst.f) do
    if workKind(f) == "t" then
      local unit, class = taskUnit(inst, sub(f, 3), value)
      units[#units + 1] = {unit, class, "t", sub(f, 3)}
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
local top = tonumber(call("GET", P .. "top") or "0")
for prio = top, minPrio, -1 do
  local entries = call("ZRANGEBYSCORE", classes(PRIO[prio]), "-inf", nowText, "WITHSCORES")
  for k = 1, #entries, 2 do
    if runs(entries[k], machines, actions) then
      local claimed = claimClass(prio, entries[k], entries[k + 1], #entries == 2)
      if claimed then return claimed end
    end
  end
end
if mode == "peek" then return -1 end
-- Nothing to claim: when asked, say when to look again, which saves
-- the worker asking (nextdue.lua) before it waits.
if ARGV[11] == "1" then return nextDue(ARGV[4], ARGV[5]) end
return nil
