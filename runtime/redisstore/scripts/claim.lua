-- claim.lua: lease the most urgent due work of one partition, or (with
-- ARGV[6] = "peek") only report the highest priority that has due work.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] now (ms); ARGV[3] lease (ms);
-- ARGV[4]  allowed machine hashes, "\n"-separated, or "*";
-- ARGV[5]  runnable actions as "hash#action" lines, or "*";
-- ARGV[6]  "peek", "claim", or "instance" (claim only instance ARGV[8]);
-- ARGV[7]  the lowest priority to consider; ARGV[8] instance id
-- Returns the priority (peek; -1 for none), or {unit, member, work value,
-- token, the instance's priority}, or nil.
local now, leaseMs, mode, minPrio = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[6], tonumber(ARGV[7])

-- Expired leases make their work claimable again.
for _, unit in ipairs(redis.call("ZRANGEBYSCORE", P .. "leases", "-inf", now)) do
  giveBack(unit)
end

local function allowed(list, item)
  if list == "*" then return true end
  for line in string.gmatch(list, "[^\n]+") do
    if line == item then return true end
  end
  return false
end

local function eligible(kind, id, action)
  local st, hash = unpack(redis.call("HMGET", ik(id), "st", "h"))
  if st ~= ACTIVE then return false end
  if not allowed(ARGV[4], hash) then return false end
  return kind == "q" or allowed(ARGV[5], hash .. "#" .. action)
end

local function lease(unit, prio)
  local kind, id, member = parseUnit(unit)
  redis.call("ZREM", ready(prio), unit)
  local token = tostring(redis.call("INCR", P .. "seq"))
  local field = "t:"
  if kind == "q" then
    member = head(id) -- a ready "q|" unit means the instance has work
    field = "w:"
  end
  local value = redis.call("HGET", ik(id), field .. member)
  redis.call("ZADD", P .. "leases", now + leaseMs, unit)
  redis.call("HSET", P .. "tokens", unit, token .. "|" .. member)
  return {unit, member, value, token, prio}
end

if mode == "instance" then
  local id = ARGV[8]
  if redis.call("EXISTS", ik(id)) == 0 then return "notfound" end
  local prio = prioOf(id)
  local units = {"q|" .. id}
  local fields = redis.call("HGETALL", ik(id))
  for k = 1, #fields, 2 do
    if string.sub(fields[k], 1, 2) == "t:" then
      local _, action = dueOf(fields[k + 1])
      units[#units + 1] = "t|" .. action .. "|" .. string.sub(fields[k], 3) .. "|" .. id
    end
  end
  for _, unit in ipairs(units) do
    local due = redis.call("ZSCORE", ready(prio), unit)
    local kind, _, _, action = parseUnit(unit)
    if due and tonumber(due) <= now and eligible(kind, id, action) then
      return lease(unit, prio)
    end
  end
  return nil
end

for prio = 9, minPrio, -1 do
  local units = redis.call("ZRANGEBYSCORE", ready(prio), "-inf", now, "LIMIT", 0, 100)
  for _, unit in ipairs(units) do
    local kind, id, _, action = parseUnit(unit)
    if eligible(kind, id, action) then
      if mode == "peek" then return prio end
      return lease(unit, prio)
    end
  end
end
if mode == "peek" then return -1 end
return nil
