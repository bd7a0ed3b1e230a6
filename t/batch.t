# batch.t -- POST /batch applies all of its operations or none: a bad
# operation anywhere rejects the whole batch with 400 (or 413 for an
# oversized value) naming it, and a reader scanning concurrently through
# other children never sees half a batch.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;
use POSIX ();

plan tests => 15;

my $enc = JSON::PP->new->utf8->canonical;
sub batch { req(POST => '/kv/batch', ref $_[0] ? $enc->encode({ ops => $_[0] }) : $_[0]) }
sub val { my $j = json_of(req(GET => "/kv/get?key=$_[0]")); $j ? $j->{value} : undef }

req(POST => '/kv/set', '{"key":"b/old","value":"here"}');
my $r = batch([{ op => 'set', key => 'b/1', value => 'one' }, { op => 'set', key => 'b/2', value => 'two', ttl => 3600 },
               { op => 'del', key => 'b/old' }]);
ok t_cmp($r->code, 200, 'a batch is applied');
ok t_cmp(json_of($r)->{applied}, 3, 'it counts its operations');
ok t_cmp(val('b/1') . ',' . val('b/2'), 'one,two', 'its sets are there');
ok t_cmp(req(GET => '/kv/get?key=b/old')->code, 404, 'its delete too');
ok t_cmp(json_of(req(GET => '/kv/get?key=b/2'))->{ttl} > 3500 ? 1 : 0, 1, 'a ttl in a batch counts');

# Nothing of a bad batch lands.
my @bad = (
    [[{ op => 'set', key => 'b/x1', value => 'x' }, { op => 'put', key => 'b/x2', value => 'x' }], 400, qr/ops\[1\]/],
    [[{ op => 'set', key => 'b/x1', value => 'x' }, { op => 'set', key => 'b/x2' }], 400, qr/ops\[1\]: missing value/],
    [[{ op => 'set', key => 'b/x1', value => 'x' }, { op => 'set', key => 'b/x2', value => 'v' x 2000 }], 413, qr/ops\[1\]: value longer/],
    [[map { { op => 'del', key => "b/x$_" } } 1 .. 1001], 400, qr/too many ops/],
    ['{"ops":[{"op":"set","key":"b/x1","value":"x"}],', 400, qr/invalid JSON/],
    [[], 400, qr/must not be empty/],
);
for my $b (@bad) {
    my $br = batch($b->[0]);
    ok t_cmp($br->code . ' ' . ((json_of($br) || {})->{error} // ''), qr/^$b->[1] .*$b->[2]/, "rejected: $b->[2]");
}
ok t_cmp(req(GET => '/kv/get?key=b/x1')->code, 404, 'nothing of a rejected batch was applied');
ok t_cmp(req(GET => '/kv/batch')->code, 405, 'GET /batch is 405');

# Atomicity under a concurrent reader: batches set b/p/a and b/p/b to the
# same number; scans (one snapshot each) through fresh connections must
# always see them equal.
batch([{ op => 'set', key => 'b/p/a', value => '0' }, { op => 'set', key => 'b/p/b', value => '0' }]);
my $pid = fork;
die "fork: $!" unless defined $pid;
if (!$pid) {
    for my $i (1 .. 300) {
        batch([{ op => 'set', key => 'b/p/a', value => "$i" }, { op => 'set', key => 'b/p/b', value => "$i" }]);
    }
    POSIX::_exit(0);
}
my ($scans, $torn) = (0, 0);
while (waitpid($pid, POSIX::WNOHANG()) == 0 && $scans < 5000) {
    my $j = json_of(req(GET => '/kv/scan?prefix=b/p/'));
    my %v = map { $_->{key} => $_->{value} } @{ $j->{items} };
    $torn++ unless $v{'b/p/a'} eq $v{'b/p/b'};
    $scans++;
}
waitpid($pid, 0) if kill 0, $pid;
ok t_cmp($torn, 0, "no scan saw half a batch ($scans scans)");
ok t_cmp(val('b/p/a') . ',' . val('b/p/b'), '300,300', 'the last batch is there whole');
