-- complete.lua: finish leased work without changing the instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] unit; ARGV[4] lease token;
-- ARGV[5..] history, cap, work, changes (see applyLists)
-- Returns "ok" or "lost".
local id, unit = ARGV[2], ARGV[3]
if not holds(unit, ARGV[4]) then return "lost" end
finish(unit)
applyLists(id, 5)
reschedule(id)
return "ok"
