-- End a job for good and write its one dead-letter record.
-- KEYS[1] job hash, KEYS[2] state counts, KEYS[3] active set,
-- KEYS[4] dead index, KEYS[5] dead-letter hash
-- ARGV[1] key, ARGV[2] now_ms, ARGV[3] reason, ARGV[4] message,
-- ARGV[5] Capsule status code or '', ARGV[6] holder id or '' for any
-- Returns 1 when the job died now, 0 when it had already ended or another
-- holder owns it.
local state = redis.call('HGET', KEYS[1], 'state')
if not state or TERMINAL[state] then return 0 end
if ARGV[6] ~= '' and not holds_lease(KEYS[1], ARGV[6]) then return 0 end
redis.call('HDEL', KEYS[1], 'leaseHolder', 'leaseUntil')
redis.call('HSET', KEYS[1], 'lastError', ARGV[4], 'deadReason', ARGV[3])
move(KEYS[1], KEYS[2], 'dead', ARGV[2])
local job = redis.call('HMGET', KEYS[1], 'payload', 'attempts', 'createdAt',
  'opportunityId')
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[5], 'key', ARGV[1], 'payload', job[1], 'reason', ARGV[3],
  'message', ARGV[4], 'status', ARGV[5], 'attempts', job[2] or '0',
  'createdAt', job[3] or ARGV[2], 'deadAt', ARGV[2],
  'opportunityId', job[4] or '')
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
