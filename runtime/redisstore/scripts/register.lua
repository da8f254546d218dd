-- register.lua: put a machine version in the order of its name's
-- versions, by when each was first registered, and make the latest of
-- the name the version registered first most recently (see
-- registry.go putMachine).
-- KEYS[1]  the name's latest key; KEYS[2] its versions (a sorted set of
--          hashes, scored in ms of Redis's clock; 0: not known); one
--          Cluster slot
-- ARGV[1]  (the prefix, unused); ARGV[2] the version's hash;
-- ARGV[3]  when it was first registered (ms), as the caller knows it;
--          "" for a version new to the registry, which is given the
--          time now (later than every version of its name); "?" for one
--          whose time nobody knows (registered by a build that kept no
--          times)
-- Returns the version's time as the order holds it, or "?".
local latestKey, versions, hash, first = KEYS[1], KEYS[2], ARGV[2], ARGV[3]
local held = call("ZSCORE", versions, hash)
if held == "0" then held = nil end
if held then
  first = held -- the order's record wins
elseif first == "" then
  local t = call("TIME") -- seconds and microseconds
  local micros = tonumber(t[2])
  local now = tonumber(t[1]) * 1000 + (micros - micros % 1000) / 1000
  local top = call("ZREVRANGE", versions, "0", "0", "WITHSCORES")
  if top[2] and tonumber(top[2]) >= now then now = tonumber(top[2]) + 1 end
  first = format("%d", now)
  call("ZADD", versions, first, hash)
elseif first == "?" then
  -- The oldest of all. It takes a place in the order only as the
  -- latest of a registry that kept none: while no version with a time
  -- registers, it stays the latest.
  local cur = call("GET", latestKey)
  if not cur or cur == hash then call("ZADD", versions, "NX", "0", hash) end
else
  call("ZADD", versions, first, hash)
end
local top = call("ZREVRANGE", versions, "0", "0")[1]
if top and top ~= call("GET", latestKey) then call("SET", latestKey, top) end
return first
