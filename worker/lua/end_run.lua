-- Count a task run that ended (see Ledger.begin_run).
-- KEYS[1] job hash
-- Returns the runs still unfinished; a purged job is left alone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'unfinishedRuns', -1)
