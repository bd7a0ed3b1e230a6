# syncfail.t -- a failed fdatasync of the log is never retried into a
# success: the write that met it fails, every later write in every child
# is refused with a clear 503 (and a logged error) even once the disk
# syncs again, reads go on, and after a full restart writes work again
# with nothing acknowledged lost.  Runs the module built with the engine's
# fault layer (build/fault/mod_kvlsm.so): while a file named
# FAULT-SYNC-EIO exists in the data directory, every fdatasync of a log
# fails with EIO.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;

my $fault_mod = KVTest::top_dir() . '/build/fault/mod_kvlsm.so';
plan tests => 9, need { 'the fault build of the module (make apache-test builds it)' => -f $fault_mod };

my %conf = (mpm => 'event', servers => 2, module => $fault_mod, extra => "KVLSMSync always\n");
my $inst = start_apache(%conf);
my $data = "$inst->{dir}/data";

ok t_cmp(set_failures($inst, 's', 50), 0, 'writes acknowledged while the disk syncs');

open my $flag, '>', "$data/FAULT-SYNC-EIO" or die "$data/FAULT-SYNC-EIO: $!";
close $flag;
my $r = req(POST => "$inst->{url}/set", q({"key":"during","value":"x"}));
ok t_cmp($r->code, qr/^5\d\d$/, 'the write that meets the failed sync is not acknowledged')
    or t_debug($r->code . ' ' . $r->content);
unlink "$data/FAULT-SYNC-EIO" or die "unlink: $!";

my ($refused, $clear) = (0, 0);
for my $i (1 .. 20) {
    my $w = req(POST => "$inst->{url}/set", qq({"key":"after$i","value":"y"}));
    $refused++ if $w->code == 503;
    my $j = json_of($w);
    $clear++ if $j && ($j->{error} // '') =~ /failed a sync; writes are refused/;
}
ok t_cmp($refused, 20, 'every later write is refused (503), though the disk syncs again');
ok t_cmp($clear, 20, 'with an error that says why');

ok t_cmp(get_mismatches($inst, 's', 50), 0, 'reads go on, every acknowledged write is there');
my $a = req(GET => "$inst->{url}/get?key=after1");
ok t_cmp($a->code, 404, 'a refused write is not stored');

stop_apache($inst);
open my $log, '<', "$inst->{dir}/error.log" or die;
my @refusals = grep { /AH10930/ } <$log>;
ok t_cmp(scalar(@refusals) >= 20, 1, 'each refusal is in the error log with its message number');

# A full restart: every child let go, the store opens afresh.
$inst = start_apache(%conf, dir => $inst->{dir}, port => $inst->{port});
my $w = req(POST => "$inst->{url}/set", q({"key":"restarted","value":"z"}));
ok t_cmp($w->code, 200, 'after a full restart writes work again');
ok t_cmp(get_mismatches($inst, 's', 50), 0, 'and nothing acknowledged was lost');
stop_apache($inst);
