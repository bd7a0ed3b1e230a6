# snapshot_syncfail.t -- GET /snapshot after a failed fdatasync of the log:
# the store's files are then the page cache of a disk that lost writes it
# had taken, so no child hands out an archive of them (a 503 with a JSON
# error, and a logged one) until a full restart; then snapshots work
# again.  Runs the module built with the engine's fault layer
# (build/fault/mod_kvlsm.so), as t/syncfail.t: while a file named
# FAULT-SYNC-EIO exists in the data directory, every fdatasync of a log
# fails with EIO.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;

my $fault_mod = KVTest::top_dir() . '/build/fault/mod_kvlsm.so';
plan tests => 8, need { 'the fault build of the module (make apache-test builds it)' => -f $fault_mod };

my %conf = (mpm => 'event', servers => 2, module => $fault_mod, extra => "KVLSMSync always\n");
my $inst = start_apache(%conf);
my $data = "$inst->{dir}/data";

my $failed = 0;
for my $i (1 .. 20) {
    my $r = req(POST => "$inst->{url}/set", qq({"key":"s$i","value":"v$i"}));
    $failed++ unless $r->code == 200;
}
my $s = req(GET => "$inst->{url}/snapshot");
ok t_cmp($failed == 0 && $s->code == 200, 1, 'writes and a snapshot while the disk syncs')
    or t_debug($s->code);

open my $flag, '>', "$data/FAULT-SYNC-EIO" or die "$data/FAULT-SYNC-EIO: $!";
close $flag;
my $r = req(POST => "$inst->{url}/set", q({"key":"during","value":"x"}));
ok t_cmp($r->code, qr/^5\d\d$/, 'the write that meets the failed sync is not acknowledged')
    or t_debug($r->code . ' ' . $r->content);
unlink "$data/FAULT-SYNC-EIO" or die "unlink: $!";

my ($refused, $clear) = (0, 0);
for my $i (1 .. 10) {
    # A fresh connection each time, so requests spread over the children.
    my $g = req(GET => "$inst->{url}/snapshot");
    $refused++ if $g->code == 503;
    my $j = json_of($g);
    $clear++ if $j && ($j->{error} // '') =~ /failed a sync; snapshots are refused/;
    t_debug($g->code . ' ' . substr($g->content, 0, 200)) unless $g->code == 503;
}
ok t_cmp($refused, 10, 'every snapshot is refused (503), though the disk syncs again');
ok t_cmp($clear, 10, 'with a JSON error that says why');
my @left = glob("$data/SNAP-*.tmp");
ok t_cmp(scalar(@left), 0, 'a refused snapshot leaves no private directory');

stop_apache($inst);
open my $log, '<', "$inst->{dir}/error.log" or die;
my @refusals = grep { /AH10955/ } <$log>;
ok t_cmp(scalar(@refusals) >= 10, 1, 'each refusal is in the error log with its message number');

# A full restart: every child let go, the store opens afresh.
$inst = start_apache(%conf, dir => $inst->{dir}, port => $inst->{port});
my $g = req(GET => "$inst->{url}/snapshot");
ok t_cmp($g->code, 200, 'after a full restart snapshots work again');
ok t_cmp($g->header('Content-Type') // '', 'application/x-tar', 'an archive');
stop_apache($inst);
