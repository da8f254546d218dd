-- enqueue.lua: add work for an existing instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3..] work (see addWork: a count of
--          1, then kind and value)
-- Returns "ok" or "notfound".
local inst = load(ARGV[2])
if not inst then return "notfound" end
addWork(inst, 3)
save(inst)
reschedule(inst, false)
return done()
