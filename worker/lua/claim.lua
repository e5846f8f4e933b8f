-- Take a job's lease before working on its create.
-- KEYS[1] job hash, KEYS[2] state counts
-- ARGV[1] holder id, ARGV[2] now_ms, ARGV[3] lease_ms
-- Returns {'claimed', field, value, ...} (the job hash after the claim),
-- {'missing'}, {'terminal', state},
-- {'created', opportunityId} or {'leased', ms until the lease ends}.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if TERMINAL[state] then return {'terminal', state} end
local opportunity = redis.call('HGET', KEYS[1], 'opportunityId')
if opportunity then return {'created', opportunity} end
local now = tonumber(ARGV[2])
local holder = redis.call('HGET', KEYS[1], 'leaseHolder')
local lease_until = tonumber(redis.call('HGET', KEYS[1], 'leaseUntil') or '0')
if holder and holder ~= ARGV[1] and lease_until > now then
  return {'leased', tostring(lease_until - now)}
end
redis.call('HSET', KEYS[1], 'leaseHolder', ARGV[1],
  'leaseUntil', now + tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSETNX', KEYS[1], 'firstAttemptAt', ARGV[2])
move(KEYS[1], KEYS[2], 'creating', ARGV[2])
local reply = redis.call('HGETALL', KEYS[1])
table.insert(reply, 1, 'claimed')
return reply
