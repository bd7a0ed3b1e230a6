# access.t -- Require, <LimitExcept> and LimitRequestBody apply to the
# store as to any handler, and rejected requests store nothing.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;

plan tests => 10;

my $d = req(GET => '/denied/get?key=a');
ok t_cmp($d->code, 403, 'Require all denied: GET 403');
ok t_cmp($d->header('Content-Type'), qr{^application/json}, "Apache's own 403 is JSON");
ok t_cmp(json_of($d) && json_of($d)->{error}, 'forbidden', '403 explained');
ok t_cmp(req(POST => '/denied/set', '{"key":"acl","value":"x"}')->code, 403, 'Require all denied: POST 403');
ok t_cmp(req(POST => '/readonly/set', '{"key":"acl","value":"x"}')->code, 403, 'LimitExcept GET: POST 403');
ok t_cmp(req(GET => '/readonly/get?key=acl')->code, 404, 'LimitExcept GET: GET allowed, nothing stored');

my $r = req(POST => '/small/set', '{"key":"big","value":"' . ('x' x 100) . '"}');
ok t_cmp($r->code, 413, 'LimitRequestBody 64: 413');
ok t_cmp(json_of($r) && json_of($r)->{error}, qr/too large/, 'JSON explanation');
ok t_cmp(req(GET => '/kv/get?key=big')->code, 404, 'nothing stored');
ok t_cmp(req(POST => '/small/set', '{"key":"tiny","value":"x"}')->code, 200, 'small body passes');
