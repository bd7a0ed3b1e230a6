# stats.t -- GET /stats: every documented figure is a JSON number, and
# they move with what happens (sets, gets, dels, a flush); mod_status's
# server-status page carries the same figures in a "kvlsm" section, as
# HTML and as ?auto lines.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;

plan tests => 10;

my @fields = qw(sst_files sst_bytes sst_mapped_bytes sst_private_bytes memtable_bytes wal_bytes flushes compactions write_stalls
                gets sets dels bytes_read bytes_written);
my $r = req(GET => '/kv/stats');
ok t_cmp($r->code, 200, '/stats answers 200');
my $s = json_of($r);
my @missing = grep { !defined $s->{$_} || $s->{$_} !~ /^\d+$/ } @fields;
ok t_cmp("@missing", '', 'every figure is there as a number');
ok t_cmp(ref $s->{levels} eq 'ARRAY' && defined $s->{levels}[0]{files} && defined $s->{levels}[0]{bytes} ? 1 : 0,
         1, 'per-level files and bytes');
ok t_cmp(req(POST => '/kv/stats', '{}')->code, 405, 'POST /stats is 405');

# A standalone Apache with mod_status and one child, so one set of counters.
my $inst = start_apache(mpm => 'prefork', servers => 1, extra => <<'CONF');
LoadModule status_module /usr/lib/apache2/modules/mod_status.so
ExtendedStatus On
<Location "/server-status">
    SetHandler server-status
</Location>
MaxRequestWorkers 1
KVLSMCompression zstd
CONF
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
my $big = 'x' x 900;
for my $i (1 .. 150) {   # 135 KB through a 64 KiB memtable: flushes
    req(POST => "$inst->{url}/set", qq({"key":"s$i","value":"$big"}), ua => $ua);
}
req(GET => "$inst->{url}/get?key=s$_", undef, ua => $ua) for 1 .. 10;
req(DELETE => "$inst->{url}/del?key=s$_", undef, ua => $ua) for 1 .. 5;
my $deadline = time + 30;
my $st;
do {
    $st = json_of(req(GET => "$inst->{url}/stats", undef, ua => $ua));
} while ($st->{flushes} < 1 && time < $deadline && select(undef, undef, undef, 0.1) >= 0);
ok t_cmp("$st->{sets} $st->{gets} $st->{dels}", '150 10 5', 'counters count what the store did');
ok t_cmp($st->{flushes} >= 1 && $st->{sst_files} >= 1 && $st->{bytes_written} > 135000 ? 1 : 0, 1,
         "flushes ($st->{flushes}), SST files ($st->{sst_files}) and bytes written ($st->{bytes_written}) move");
ok t_cmp(json_of(req(GET => "$inst->{url}/get?key=s20", undef, ua => $ua))->{value}, $big,
         'a value flushed into a zstd-compressed SST reads back');
my $html = req(GET => "$inst->{url}/server-status", undef, ua => $ua);
ok t_cmp($html->content, qr{<h2>kvlsm: [^<]*/data</h2>}, 'server-status has a kvlsm section');
ok t_cmp($html->content, qr{<th align="left">sets</th><td>150</td>}, 'with the figures');
my $auto = req(GET => "$inst->{url}/server-status?auto", undef, ua => $ua)->content;
ok t_cmp($auto, qr/^kvlsm sets: 150$/m, '?auto has "kvlsm <name>: <number>" lines');
stop_apache($inst);
