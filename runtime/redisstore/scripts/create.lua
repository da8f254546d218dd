-- create.lua: create an instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] status; ARGV[4] priority;
-- ARGV[5]  machine id; ARGV[6..8] d, c, f (see writeData);
-- ARGV[9..] history, cap, work, changes (see applyLists)
-- Returns "ok" or "exists".
local id = ARGV[2]
local key = ik(id)
if call("EXISTS", key) == 1 then return "exists" end
local inst = newInstance(id, key, fieldTable(), NONE, NONE)
inst.st0, inst.prio0 = ARGV[3], ARGV[4]
put(inst, "v", "1")
put(inst, "st", ARGV[3])
put(inst, "pr", ARGV[4])
put(inst, "h", ARGV[5])
writeData(inst, 6)
applyLists(inst, 9)
save(inst)
if ARGV[3] == COMPLETED or ARGV[3] == CANCELLED then expireEnded(inst) end
reschedule(inst, true)
return done()
