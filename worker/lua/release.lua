-- Give up the lease after a transient failure, to be retried later.
-- KEYS[1] job hash, KEYS[2] state counts
-- ARGV[1] holder id, ARGV[2] now_ms, ARGV[3] error text,
-- ARGV[4] '1' when no create of this job can have reached Capsule,
-- ARGV[5] '1' when the failure counts against the retry budget
-- Returns the job's failure count, or -1 when the lease was not the holder's.
if not holds_lease(KEYS[1], ARGV[1]) then return -1 end
redis.call('HDEL', KEYS[1], 'leaseHolder', 'leaseUntil')
if ARGV[4] == '1' then redis.call('HDEL', KEYS[1], 'createPending') end
redis.call('HSET', KEYS[1], 'lastError', ARGV[3])
move(KEYS[1], KEYS[2], 'retrying', ARGV[2])
if ARGV[5] == '1' then
  return redis.call('HINCRBY', KEYS[1], 'failures', 1)
end
return tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
