-- create.lua: create an instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] status; ARGV[4] priority;
-- ARGV[5]  machine id; ARGV[6..8] d, c, f (see writeData);
-- ARGV[9..] history, cap, work, changes (see applyLists)
-- Returns "ok" or "exists".
--
-- A create runs for every instance, so it writes the hash straight from
-- its arguments (one HSET), without the instance table that scripts
-- which read an instance build (load): each table, string and function
-- call costs Redis's Lua more than a redis.call's own work.
local id, st, prio, class = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = ik(id)
if call("EXISTS", key) == 1 then return "exists" end
local hset, n = {"HSET", key, "v", "1", "st", st, "pr", prio, "h", class}, 10
for k = 6, 8 do
  if ARGV[k] ~= "" then
    hset[n + 1], hset[n + 2], n = DATA_FIELDS[k - 5], ARGV[k], n + 2
  end
end
local entries, cap, i = readHistory(9)
if entries then hset[n + 1], hset[n + 2], n = "hi", cappedHistory(entries, cap), n + 2 end
-- Work: task attempts are ready at once (an instance that is not active
-- runs none); the instance's queue is ready when its earliest instance
-- work is due (a claim takes the first to arrive of those due then).
local count = NUM[ARGV[i]]
local active = st == ACTIVE
local headDue
if count > 0 then
  local last = call("INCRBY", K.seq, ARGV[i]) - count
  for k = 1, count do
    local kind, value = ARGV[i + 2 * k - 1], ARGV[i + 2 * k]
    local member = format("%d", last + k)
    if kind == "task" then
      hset[n + 1], hset[n + 2], n = "t:" .. member, value, n + 2
      if active then
        local unit, taskClass = taskUnitOf(id, class, member, value)
        makeReady(prio, taskClass, dueOf(value), unit)
      end
    else
      hset[n + 1], hset[n + 2], n = "w:" .. member, value, n + 2
      local due = dueOf(value)
      if not headDue or tonumber(due) < tonumber(headDue) then headDue = due end
    end
  end
end
addChanges(i + 2 * count + 1)
call(unpack(hset, 1, n))
if st == COMPLETED or st == CANCELLED then expireEnded(key) end
if headDue and (active or st == COMPLETED) then makeReady(prio, class, headDue, "q|" .. id) end
return done()
