-- migrate.lua: move the queued work of an earlier layout into this
-- one's. Builds before ready sets per class kept one ready set per
-- priority, P.."ready:"..p, of every unit; this moves up to ARGV[2] of
-- their units into the sets of their classes. A unit goes where this
-- build would put it, by what its instance holds now (an older build's
-- entry may be out of date: this build may have handled the work
-- since), unless it is leased.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] the most units to move
-- Returns how many units it took out of the earlier sets (0: none left).
local old = {}
for prio = 0, 9 do old[prio + 1] = P .. "ready:" .. PRIO[prio] end
if call("EXISTS", unpack(old)) == 0 then return 0 end
local limit, moved = tonumber(ARGV[2]), 0
for prio = 0, 9 do
  for _, unit in ipairs(call("ZRANGE", old[prio + 1], "0", limit - moved - 1)) do
    local kind, id, member = parseUnit(unit)
    local inst = load(id)
    if pending(inst, kind, member) and not call("ZSCORE", K.leases, unit) then
      if kind == "q" then
        reschedule(inst, true) -- not leased (checked above)
      else
        readyTask(inst, member, inst.f["t:" .. member])
      end
    end
    call("ZREM", old[prio + 1], unit)
    moved = moved + 1
  end
  if moved >= limit then break end
end
return moved
