-- complete.lua: finish leased work without changing the instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] unit; ARGV[4] lease token;
-- ARGV[5..] history, cap, work, changes (see applyLists), then
--          optionally the worker's next claim (see chain)
-- Returns "ok" or "ready" (with a claim, {that, the claim's answer}), or
-- "lost".
local id, unit = ARGV[2], ARGV[3]
local token, member = leaseOf(unit)
if token == nil or token ~= ARGV[4] then return "lost" end
local queue = byte(unit) == BYTE_Q
if queue then unlock(id, token) end
local inst = load(id)
if not inst then
  unlease(unit)
  return "ok"
end
finish(inst, unit, member)
local i = applyLists(inst, 5)
save(inst)
reschedule(inst, queue)
return chain(i)
