# api.t -- the HTTP contract of /get, /set and /del on a real Apache.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;

plan tests => 36;

sub set_ok {
    my ($k, $v, $msg) = @_;
    my $r = req(POST => '/kv/set', JSON::PP->new->utf8->encode({ key => $k, value => $v }));
    ok t_cmp($r->code, 200, "set $msg");
    return $r;
}

# Missing key: 404 with the key named.
my $r = req(GET => '/kv/get?key=nothing-here');
ok t_cmp($r->code, 404, 'absent key is 404');
ok t_cmp($r->header('Content-Type'), qr{^application/json}, 'JSON content type');
ok t_cmp(json_of($r)->{error}, 'not found', 'error says not found');
ok t_cmp(json_of($r)->{key}, 'nothing-here', 'error names the key');

# Set, then get through another connection.
$r = set_ok('alpha', 'one', 'alpha');
ok t_cmp(json_of($r)->{key}, 'alpha', 'set answers the key');
$r = req(GET => '/kv/get?key=alpha');
ok t_cmp($r->code, 200, 'get after set');
ok t_cmp(json_of($r)->{value}, 'one', 'value read back');
ok t_cmp(json_of($r)->{key}, 'alpha', 'key read back');
ok t_cmp($r->header('ETag'), qr/^"\d+"$/, 'strong ETag from the version');

# Overwrite.
set_ok('alpha', 'two', 'overwrite');
ok t_cmp(json_of(req(GET => '/kv/get?key=alpha'))->{value}, 'two', 'overwritten value');

# HEAD is GET without a body.
$r = req(HEAD => '/kv/get?key=alpha');
ok t_cmp($r->code, 200, 'HEAD 200');
ok t_cmp(length($r->content), 0, 'HEAD has no body');
ok t_cmp(req(HEAD => '/kv/get?key=nope')->code, 404, 'HEAD of a missing key is 404');

# curl -d sends form-urlencoded: the body is JSON all the same.
$r = req(POST => '/kv/set', '{"key":"form","value":"ok"}',
         'Content-Type' => 'application/x-www-form-urlencoded');
ok t_cmp($r->code, 200, 'form content type accepted');
ok t_cmp(json_of(req(GET => '/kv/get?key=form'))->{value}, 'ok', 'stored');

# Delete returns the old value, then the key is gone.
$r = req(DELETE => '/kv/del?key=alpha');
ok t_cmp($r->code, 200, 'delete');
ok t_cmp(json_of($r)->{value}, 'two', 'delete returns the old value');
ok t_cmp(json_of($r)->{key}, 'alpha', 'delete names the key');
ok t_cmp(req(GET => '/kv/get?key=alpha')->code, 404, 'gone after delete');
$r = req(DELETE => '/kv/del?key=alpha');
ok t_cmp($r->code, 404, 'second delete is 404');
ok t_cmp(json_of($r)->{error}, 'not found', 'second delete says not found');

# Form decoding of the key; the first key parameter counts.
set_ok('a b+c/d?&=', 'sym', 'symbols');
$r = req(GET => '/kv/get?key=a+b%2Bc%2Fd%3F%26%3D');
ok t_cmp(json_of($r)->{value}, 'sym', 'key decoded as a form');
$r = req(GET => '/kv/get?key=a%20b%2Bc%2Fd%3F%26%3D&key=other');
ok t_cmp(json_of($r)->{value}, 'sym', 'first key parameter counts');

# Unicode keys and values, and values with every JSON escape.
my $uk = "cl\x{e9}-\x{1F600}";
my $uv = "line1\nline2\t\"quoted\" \\ \x{2603} \x{1}";
set_ok($uk, $uv, 'unicode');
my $qk = join '', map { sprintf '%%%02X', ord } split //, do { my $s = $uk; utf8::encode($s); $s };
$r = req(GET => "/kv/get?key=$qk");
ok t_cmp(json_of($r)->{value}, $uv, 'unicode value round trip');
ok t_cmp(json_of($r)->{key}, $uk, 'unicode key round trip');

# Empty value is a value.
set_ok('empty', '', 'empty value');
$r = req(GET => '/kv/get?key=empty');
ok t_cmp($r->code, 200, 'empty value is found');
ok t_cmp(json_of($r)->{value}, '', 'empty value read back');

# Other paths under the mount: JSON 404.
$r = req(GET => '/kv/nothing');
ok t_cmp($r->code, 404, 'unknown endpoint 404');
ok t_cmp(json_of($r)->{error}, qr/no such endpoint/, 'unknown endpoint explained');

# Many keys force memtable flushes (64K memtable): all still readable.
my $bad = 0;
for my $i (1 .. 600) {
    my $res = req(POST => '/kv/set', qq({"key":"bulk$i","value":"@{[ 'x' x 200 ]}$i"}));
    $bad++ unless $res->code == 200;
}
ok t_cmp($bad, 0, '600 sets through flushes');
$bad = 0;
for my $i (1 .. 600) {
    my $v = json_of(req(GET => "/kv/get?key=bulk$i"));
    $bad++ unless $v && $v->{value} eq ('x' x 200) . $i;
}
ok t_cmp($bad, 0, 'all 600 read back');
