-- create.lua: create an instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] status; ARGV[4] priority;
-- ARGV[5]  machine id; ARGV[6..8] d, c, f (see writeData);
-- ARGV[9..] history, cap, work, changes (see applyLists)
-- Returns "ok" or "exists".
local id = ARGV[2]
if redis.call("EXISTS", ik(id)) == 1 then return "exists" end
redis.call("HSET", ik(id), "v", 1, "st", ARGV[3], "pr", ARGV[4], "h", ARGV[5])
writeData(id, 6)
applyLists(id, 9)
reschedule(id)
return "ok"
