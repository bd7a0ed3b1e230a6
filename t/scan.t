# scan.t -- GET /scan: ascending byte order, prefix/start/end bounds,
# paging with cursors until next is null, keys only with values=0,
# deleted and expired keys never listed, and a 400 for every bad parameter.
# Then what a page may cost, on an Apache of its own: a run of 50,000
# deleted keys before a live one ends pages early with a cursor (each
# answered at once) until the live key comes; and the page cap counts the
# JSON as sent (a value of control bytes is six times its size), the first
# item included.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;
use Encode qw(encode_utf8);
use Time::HiRes qw(time);

plan tests => 31;

my $enc = JSON::PP->new->utf8->canonical;
sub set { req(POST => '/kv/set', $enc->encode({ key => $_[0], value => $_[1], @_ > 2 ? (ttl => $_[2]) : () })) }
sub scan { my $r = req(GET => "/kv/scan?$_[0]"); return ($r, json_of($r)) }

# 30 keys under sc/, written out of order, one of them deleted.
my @keys = map { sprintf 'sc/%02d', $_ } 0 .. 29;
for my $k (reverse @keys) { set($k, "v-$k") }
set('sc/zz-gone', 'x');
req(DELETE => '/kv/del?key=sc/zz-gone');
set('sd/other', 'y');
set("sc/\x{e9}", 'accent');

my ($r, $j) = scan('prefix=sc/&limit=1000');
ok t_cmp($r->code, 200, 'scan answers 200');
ok t_cmp($r->header('Content-Type'), qr{^application/json}, 'as JSON');
my @got = map { encode_utf8($_->{key}) } @{ $j->{items} };
ok t_cmp(join(',', @got), join(',', @keys, encode_utf8("sc/\x{e9}")), 'the prefix, ascending by bytes, deleted key absent');
ok t_cmp($j->{items}[0]{value}, 'v-sc/00', 'values included');
ok t_cmp(defined $j->{next} ? 'set' : 'null', 'null', 'next is null when nothing follows');

($r, $j) = scan('start=sc/10&end=sc/15');
ok t_cmp(join(',', map { $_->{key} } @{ $j->{items} }), 'sc/10,sc/11,sc/12,sc/13,sc/14', 'start inclusive, end exclusive');

($r, $j) = scan('prefix=sc/&values=0&limit=3');
ok t_cmp(join(',', map { join '=', %$_ } @{ $j->{items} }), 'key=sc/00,key=sc/01,key=sc/02', 'values=0: keys only');

# Paging through with the cursor.
my @paged;
my ($pages, $cursor) = (0, undef);
do {
    ($r, $j) = scan('prefix=sc/&limit=7' . (defined $cursor ? "&cursor=$j->{next}" : ''));
    push @paged, map { encode_utf8($_->{key}) } @{ $j->{items} };
    $cursor = $j->{next};
    $pages++;
} while (defined $cursor && $pages < 20);
ok t_cmp(join(',', @paged), join(',', @keys, encode_utf8("sc/\x{e9}")), 'pages cover every key once, in order');
ok t_cmp($pages, 5, '31 keys in pages of 7: 5 pages');
($r, $j) = scan('prefix=sc/&limit=31');
ok t_cmp(defined $j->{next} ? 'set' : 'null', 'null', 'a page that ends exactly at the last key has no next');

# A key written between pages shows up on a later page, in order.
($r, $j) = scan('prefix=sc/&limit=5');
set('sc/05a', 'late');
my $first_next = $j->{next};
($r, $j) = scan("prefix=sc/&limit=2&cursor=$first_next");
ok t_cmp(join(',', map { $_->{key} } @{ $j->{items} }), 'sc/05,sc/05a', 'the cursor continues after the last key');
req(DELETE => '/kv/del?key=sc/05a');

# Expired keys vanish from scans.
set('se/short', 'x', 1);
set('se/long', 'y', 3600);
# Wait (bounded) until the short one reads as missing: that is the expiry.
my $deadline = time + 5;
select(undef, undef, undef, 0.1) while req(GET => '/kv/get?key=se/short')->code == 200 && time < $deadline;
($r, $j) = scan('prefix=se/');
ok t_cmp(join(',', map { $_->{key} } @{ $j->{items} }), 'se/long', 'an expired key is not listed');

# Bad parameters: 400 with a JSON error, nothing else happens.
for my $bad ('limit=0', 'limit=abc', 'limit=1001', 'limit=-1', 'limit=', 'values=2',
             'cursor=!!', 'cursor=a', 'prefix=%zz', 'start=%ff') {
    my ($br, $bj) = scan($bad);
    ok t_cmp($br->code . ' ' . (($bj || {})->{error} ? 'json' : 'none'), '400 json', "400 for $bad");
}
$r = req(POST => '/kv/scan', '');
ok t_cmp($r->code, 405, 'POST /scan is 405');

# ---- bounded pages ---------------------------------------------------------
# A memtable large enough that the deletes stay in it as tombstones (an
# SST's are the engine tests' business), default value and page sizes.
my $inst = start_apache(mpm => 'event', servers => 1, extra => "KVLSMMemtableSize 256M\n");
sub post { req(POST => "$inst->{url}$_[0]", $_[1]) }
my $failed = 0;
for my $del (0, 1) {
    for my $b (0 .. 49) {
        my @ops = map { my $k = sprintf 'r/d/%05d', $b * 1000 + $_;
                        $del ? { op => 'del', key => $k } : { op => 'set', key => $k, value => 'x' } } 0 .. 999;
        $failed++ unless post('/batch', $enc->encode({ ops => \@ops }))->code == 200;
    }
}
$failed++ unless post('/set', '{"key":"r/z","value":"live"}')->code == 200;
ok t_cmp($failed, 0, '50,000 keys written and deleted, one live key after them');
my (@items, @early, $slow);
my ($bnext, $bpages) = (undef, 0);
do {
    my $t0 = time;
    my $pr = req(GET => "$inst->{url}/scan?prefix=r/&limit=10" . (defined $bnext ? "&cursor=$bnext" : ''));
    my $pj = json_of($pr) || {};
    my $took = time - $t0;
    $slow = $took if !defined $slow || $took > $slow;
    push @items, map { $_->{key} } @{ $pj->{items} || [] };
    push @early, scalar(@{ $pj->{items} || [] }) == 0 && defined $pj->{next} ? 1 : 0;
    $bnext = $pj->{next};
    $bpages++;
} while (defined $bnext && $bpages < 50);
ok t_cmp($early[0], 1, 'the first page comes back empty, with a cursor: the deleted run is not walked in one go');
ok t_cmp($bpages >= 2 && $bpages <= 12 ? 1 : 0, 1, "following the cursors ($bpages pages)");
ok t_cmp(join(',', @items), 'r/z', 'reaches the live key, and only it');
ok t_cmp($slow < 5 ? 1 : 0, 1, sprintf('each page answered in bounded time (slowest %.3f s)', $slow));

# Three values of 1,000,000 control bytes: 6 MB of JSON each.  A page
# holds at most max(8 MiB, one item of the configured sizes) of items:
# one of them per page, where counting raw bytes put all three on one.
my $ctl = "\x01" x 1_000_000;
$failed = 0;
for my $i (1 .. 3) {
    $failed++ unless post('/set', $enc->encode({ key => "r2/$i", value => $ctl }))->code == 200;
}
ok t_cmp($failed, 0, 'three values of control bytes stored');
my (@sizes, @counts, $intact);
($bnext, $bpages, $intact) = (undef, 0, 1);
do {
    my $pr = req(GET => "$inst->{url}/scan?prefix=r2/" . (defined $bnext ? "&cursor=$bnext" : ''));
    my $pj = json_of($pr) || {};
    push @sizes, length $pr->content;
    push @counts, scalar @{ $pj->{items} || [] };
    $intact = 0 if grep { ($_->{value} // '') ne $ctl } @{ $pj->{items} || [] };
    $bnext = $pj->{next};
    $bpages++;
} while (defined $bnext && $bpages < 10);
ok t_cmp(join(',', @counts), '1,1,1', 'one item per page: the cap counts the escaped bytes');
ok t_cmp((grep { $_ > 8 * 1024 * 1024 + 1024 } @sizes) ? 'over' : 'within', 'within',
         'every page within 8 MiB (' . join(',', @sizes) . ' bytes), values intact') if $intact;
ok 0 unless $intact;
stop_apache($inst);
