# reopen.t -- a child whose store failed to open at start (here: a
# damaged MANIFEST) answers 503 with Retry-After, and once the directory
# is sound again serves without a restart: it tries again with backoff.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;
use Time::HiRes qw(time sleep);

plan tests => 6;

my $inst = start_apache(mpm => 'event', servers => 2);
my $data = "$inst->{dir}/data";
ok t_cmp(set_failures($inst, 'r', 20), 0, 'writes acknowledged');
stop_apache($inst);

# Damage the manifest, keeping the good copy.
open my $in, '<:raw', "$data/MANIFEST" or die "$data/MANIFEST: $!";
my $good = do { local $/; <$in> };
close $in;
open my $out, '>:raw', "$data/MANIFEST" or die $!;
print $out 'x' x length($good);
close $out;

$inst = start_apache(mpm => 'event', servers => 2, dir => $inst->{dir}, port => $inst->{port});
my $r = req(GET => "$inst->{url}/get?key=r1");
ok t_cmp($r->code, 503, 'a child that cannot open the store answers 503');
ok t_cmp($r->header('Retry-After') // '', qr/^\d+$/, 'with Retry-After');
my $broken = $r->header('X-KVLSM-Pid') // 0;

# Repair it (atomically, as an operator restoring a backup would).
open $out, '>:raw', "$data/MANIFEST.new" or die $!;
print $out $good;
close $out;
rename "$data/MANIFEST.new", "$data/MANIFEST" or die $!;

# Backoff is 1, 2, 4 ... s: within 20 s every child must serve, the one
# that answered 503 above included (a child that started after the
# repair never failed, and may take every request if it alone is asked).
my $deadline = time + 20;
my ($ok, $healed) = (0, 0);
while (time < $deadline) {
    # Fresh connections, so both children are asked.
    my $all = 1;
    for (1 .. 6) {
        my $g = req(GET => "$inst->{url}/get?key=r1");
        $all = 0 unless $g->code == 200;
        $healed = 1 if $g->code == 200 && ($g->header('X-KVLSM-Pid') // -1) eq $broken;
    }
    if ($all && $healed) { $ok = 1; last }
    sleep 0.2;
}
ok t_cmp($ok, 1, "once the directory is sound, the children serve without a restart (pid $broken too)");
ok t_cmp(get_mismatches($inst, 'r', 20), 0, 'with everything acknowledged before');
stop_apache($inst);
open my $log, '<', "$inst->{dir}/error.log" or die;
my @l = <$log>;
ok t_cmp(scalar(grep { /AH10931/ } @l) >= 1, 1, 'the reopen is logged');
