# bad_input.t -- every malformed request gets a clear JSON error with the
# right status, and changes nothing in the store.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;

my @bodies = (
    [ '',                                           400, qr/empty body/ ],
    [ '{',                                          400, qr/invalid JSON/ ],
    [ 'not json',                                   400, qr/invalid JSON/ ],
    [ '[1,2]',                                      400, qr/object/ ],
    [ '"a string"',                                 400, qr/object/ ],
    [ '{"key":"guard","value":"x"} trailing',       400, qr/trailing/ ],
    [ '{"key":"guard","value":"x"}{}',              400, qr/trailing/ ],
    [ '{"value":"x"}',                              400, qr/missing key/ ],
    [ '{"key":"","value":"x"}',                     400, qr/empty/ ],
    [ '{"key":7,"value":"x"}',                      400, qr/key must be a string/ ],
    [ '{"key":null,"value":"x"}',                   400, qr/key must be a string/ ],
    [ '{"key":"guard"}',                            400, qr/missing value/ ],
    [ '{"key":"guard","value":5}',                  400, qr/value must be a string/ ],
    [ '{"key":"guard","value":["x"]}',              400, qr/value must be a string/ ],
    [ '{"key":"guard","value":null}',               400, qr/value must be a string/ ],
    [ '{"key":"guard\u0000x","value":"x"}',         400, qr/U\+0000/ ],
    [ '{"key":"guard","value":"a\u0000b"}',         400, qr/U\+0000/ ],
    [ qq({"key":"guard","value":"\xff\xfe"}),       400, qr/UTF-8/ ],
    [ qq({"key":"guard","value":"a\0b"}),           400, qr/NUL/ ],
    [ '{"key":"\ud800","value":"x"}',               400, qr/invalid JSON/ ],
    [ '{"key":"' . ('k' x 65) . '","value":"x"}',   413, qr/key longer/ ],
    [ '{"key":"guard","value":"' . ('v' x 1025) . '"}', 413, qr/value longer/ ],
    [ '{"key":"guard","value":"' . ('v' x 20000) . '"}', 413, qr/too large/ ],
    [ '{"key":"guard","value":"x","extra":1}',     400, qr/unknown field "extra": a \/set body holds only key, value and ttl/ ],
    [ '{"key":"guard","value":"x","value":"y"}',   400, qr/duplicate field "value"/ ],
    [ '{"key":"guard","value":{"nested":["x"]}}',  400, qr/value must be a string/ ],
);
my @queries = (
    [ GET    => '/kv/get',                400, qr/missing key/ ],
    [ GET    => '/kv/get?key=',           400, qr/missing key/ ],
    [ GET    => '/kv/get?other=1',        400, qr/missing key/ ],
    [ GET    => '/kv/get?key=%zz',        400, qr/%-escape/ ],
    [ GET    => '/kv/get?key=abc%4',      400, qr/%-escape/ ],
    [ GET    => '/kv/get?key=a%00b',      400, qr/UTF-8/ ],
    [ GET    => '/kv/get?key=%ff',        400, qr/UTF-8/ ],
    [ GET    => '/kv/get?key=' . ('k' x 65), 413, qr/key longer/ ],
    [ DELETE => '/kv/del',                400, qr/missing key/ ],
    [ DELETE => '/kv/del?key=%G0',        400, qr/%-escape/ ],
    [ DELETE => '/kv/del?key=' . ('k' x 65), 413, qr/key longer/ ],
);
my @methods = (
    [ POST   => '/kv/get', 'GET, HEAD' ],
    [ PUT    => '/kv/get', 'GET, HEAD' ],
    [ DELETE => '/kv/get', 'GET, HEAD' ],
    [ GET    => '/kv/set', 'POST' ],
    [ PUT    => '/kv/set', 'POST' ],
    [ GET    => '/kv/del', 'DELETE' ],
    [ POST   => '/kv/del', 'DELETE' ],
);

plan tests => 3 * @bodies + 3 * @queries + 4 * @methods + 4;

# A known value that must survive every rejected request.
ok t_cmp(req(POST => '/kv/set', '{"key":"guard","value":"safe"}')->code, 200, 'guard stored');

for my $b (@bodies) {
    my ($body, $code, $msg) = @$b;
    my $r = req(POST => '/kv/set', $body, 'Content-Type' => 'application/json');
    my $label = length($body) > 40 ? substr($body, 0, 40) . '...' : $body;
    ok t_cmp($r->code, $code, "status for body $label");
    my $j = json_of($r);
    ok t_cmp($j && $j->{error}, $msg, "error for body $label");
    ok t_cmp($r->header('Content-Type'), qr{^application/json}, 'JSON error');
}
for my $q (@queries) {
    my ($m, $url, $code, $msg) = @$q;
    my $r = req($m => $url);
    ok t_cmp($r->code, $code, "$m $url");
    my $j = json_of($r);
    ok t_cmp($j && $j->{error}, $msg, "error for $m $url");
    ok t_cmp($r->header('Content-Type'), qr{^application/json}, 'JSON error');
}
for my $m (@methods) {
    my ($method, $url, $allow) = @$m;
    my $r = req($method => $url, $method eq 'POST' || $method eq 'PUT' ? '{"key":"guard","value":"x"}' : undef);
    ok t_cmp($r->code, 405, "$method $url");
    ok t_cmp($r->header('Allow'), $allow, "Allow for $url");
    my $j = json_of($r);
    ok t_cmp($j && $j->{error}, qr/not allowed/, 'explained');
    ok t_cmp($r->header('Content-Type'), qr{^application/json}, 'JSON error');
}

# Nothing was stored or lost.
my $r = req(GET => '/kv/get?key=guard');
ok t_cmp($r->code, 200, 'guard still there');
ok t_cmp(json_of($r)->{value}, 'safe', 'guard unchanged');
ok t_cmp(req(GET => '/kv/get?key=guard%00x')->code, 400, 'no truncated key was stored');
