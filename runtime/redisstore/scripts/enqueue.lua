-- enqueue.lua: add work for an existing instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3..] work (see addWork: a count of
--          1, then kind and value)
-- Returns "ok", "notfound", or "ended:"..status for an instance that
-- completed or was cancelled (checked here, with the write, so an event
-- racing the end is refused, never left behind).
local inst = load(ARGV[2])
if not inst then return "notfound" end
local st = inst.f.st
if st == COMPLETED or st == CANCELLED then return "ended:" .. st end
addWork(inst, 3)
save(inst)
reschedule(inst, false)
return done()
