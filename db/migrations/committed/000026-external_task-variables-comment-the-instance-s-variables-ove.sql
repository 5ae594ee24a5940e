--! Previous: sha1:c6405e30dddf1770f541c4d92544d247e660dbb2
--! Hash: sha1:25814373c19549a80884bb86739ae2287028e5a3
--! Message: external_task.variables comment: the instance's variables overlaid by local_variables

-- What fetch_and_lock stores in external_task.variables since 000024.
comment on column bpm.external_task.variables is E'The variables the worker was given at fetch time: the instance''s, overlaid by local_variables.';
