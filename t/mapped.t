# mapped.t -- KVLSMMapSize: children read their SSTs through memory
# mappings within the budget and answer exactly as with pread, across
# flushes, overwrites and deletes, on every child; /stats shows the mapped
# bytes, never more than the budget.  Without the directive every SST is
# mapped; with KVLSMMapSize 0 none is.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use LWP::UserAgent;
use Time::HiRes qw(time);
use KVTest;

plan tests => 11;

my $budget = 128 * 1024;
my $inst = start_apache(mpm => 'event', servers => 3, extra => "KVLSMMapSize 128K\n");
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
my $val = sub { my ($i, $ver) = @_; "v$ver-$i-" . ('x' x (150 + $i % 50)) };

# About 300 KB through a 64 KiB memtable: several SSTs, more than the budget.
my $errors = 0;
for my $ver (1, 2) {
    for my $i (1 .. 1000) {
        next if $ver == 2 && $i % 3;
        my $w = req(POST => "$inst->{url}/set", qq({"key":"m$i","value":"@{[$val->($i, $ver)]}"}), ua => $ua);
        $errors++ unless $w->code == 200;
    }
}
for my $i (1 .. 1000) {
    next unless $i % 5 == 0;
    $errors++ unless req(DELETE => "$inst->{url}/del?key=m$i", undef, ua => $ua)->code == 200;
}
ok t_cmp($errors, 0, 'every write and delete acknowledged');

# Every key through fresh connections (several children), twice.
my ($wrong, %pids) = (0);
for my $pass (1, 2) {
    for my $i (1 .. 1000) {
        my $r = req(GET => "$inst->{url}/get?key=m$i");
        $pids{ $r->header('X-KVLSM-Pid') // 'none' }++;
        if ($i % 5 == 0) {
            $wrong++ unless $r->code == 404;
            next;
        }
        my $j = json_of($r);
        my $want = $val->($i, $i % 3 ? 1 : 2);
        $wrong++ unless $r->code == 200 && $j && $j->{value} eq $want;
    }
}
ok t_cmp($wrong, 0, 'every key reads its newest value, deleted keys 404');
ok t_cmp(scalar(grep { $_ ne 'none' } keys %pids) >= 2, 1,
         'answered by several children (' . join(',', sort keys %pids) . ')');

# Each child's figures, through fresh connections: every child that read
# has mapped files (a file that found no room when it loaded is mapped by
# a read once compaction frees some), none beyond the budget.
my (%mapped, $sst_bytes);
for (1 .. 15) {
    my $r = req(GET => "$inst->{url}/stats");
    my $st = json_of($r) or next;
    $sst_bytes = $st->{sst_bytes};
    $mapped{ $r->header('X-KVLSM-Pid') // 'none' } = $st->{sst_mapped_bytes};
}
my @m = values %mapped;
ok t_cmp($sst_bytes > $budget ? 1 : 0, 1, "more SST data ($sst_bytes) than the budget");
ok t_cmp((grep { $_ > 0 } @m) ? 1 : 0, 1, 'children map some of it (' . join(',', @m) . ')');
ok t_cmp((grep { $_ > $budget } @m) ? 0 : 1, 1, 'no child maps more than KVLSMMapSize');

my $log = do { local $/; open my $fh, '<', "$inst->{dir}/error.log" or die $!; <$fh> };
ok t_cmp($log, qr/mapped SST bytes 131072/, 'the start-up line names the budget');
stop_apache($inst);

# The default maps every file a child reads; 0 maps none.
for my $case ([ '', 'by default' ], [ "KVLSMMapSize 0\n", 'with KVLSMMapSize 0' ]) {
    my ($extra, $name) = @$case;
    my $i2 = start_apache(mpm => 'event', servers => 1, extra => $extra);
    my $ua2 = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
    my $bad = 0;
    for my $i (1 .. 600) {
        $bad++ unless req(POST => "$i2->{url}/set", qq({"key":"d$i","value":"@{[$val->($i, 1)]}"}), ua => $ua2)->code == 200;
    }
    for my $i (1 .. 600) {
        my $j = json_of(req(GET => "$i2->{url}/get?key=d$i", undef, ua => $ua2));
        $bad++ unless $j && $j->{value} eq $val->($i, 1);
    }
    my $st = json_of(req(GET => "$i2->{url}/stats", undef, ua => $ua2)) || {};
    ok t_cmp($bad, 0, "$name: every write acknowledged and read back");
    if ($extra) {
        ok t_cmp($st->{sst_mapped_bytes}, 0, "$name: nothing mapped ($st->{sst_bytes} SST bytes)");
    }
    else {
        # Mapped: the data blocks of every file, so most of the SST bytes.
        ok t_cmp($st->{sst_mapped_bytes} > $st->{sst_bytes} / 2 ? 1 : 0, 1,
                 "$name: the files are mapped ($st->{sst_mapped_bytes} of $st->{sst_bytes} SST bytes)");
    }
    stop_apache($i2);
}
