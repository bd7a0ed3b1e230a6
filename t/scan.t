# scan.t -- GET /scan: ascending byte order, prefix/start/end bounds,
# paging with cursors until next is null, keys only with values=0,
# deleted and expired keys never listed, and a 400 for every bad parameter.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;
use Encode qw(encode_utf8);

plan tests => 23;

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
