-- Shared helpers, prepended to every ledger script.
-- A job's state lives in its hash; KEYS[2] is always the per-state count hash.
local TERMINAL = {verified = true, repaired = true, dead = true}

local function move(job, counts, to_state, now_ms)
  local from_state = redis.call('HGET', job, 'state')
  if from_state == to_state then
    redis.call('HSET', job, 'updatedAt', now_ms)
    return
  end
  if from_state then
    redis.call('HINCRBY', counts, from_state, -1)
  end
  redis.call('HINCRBY', counts, to_state, 1)
  redis.call('HSET', job, 'state', to_state, 'updatedAt', now_ms)
end

local function holds_lease(job, holder)
  return redis.call('HGET', job, 'leaseHolder') == holder
end
