# crash.t -- kill -9 under load: Apache with several children takes
# concurrent writes from client processes; the whole Apache process group
# is SIGKILLed after a random number of acknowledged writes, restarted on
# the same directory, and every acknowledged write is checked; no read may
# return a value that was never written.  KVLSM_STRESS_CYCLES sets the
# number of cycles (10 here, 200 in `make stress`).
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use IO::Select;
use POSIX qw(_exit WNOHANG);
use Time::HiRes qw(time);
use KVTest;

my $cycles = $ENV{KVLSM_STRESS_CYCLES} || 10;
my $clients = 3;
plan tests => 2 * $cycles + 1;

srand($ENV{KVLSM_SEED} || time);
my $seed = srand();
t_debug("seed $seed");

my %acked;          # key -> value, for every write acknowledged with 200
my $dir;
my ($lost_total, $corrupt_total, $killed_during) = (0, 0, 0);

for my $cycle (1 .. $cycles) {
    my $mpm = $cycle % 2 ? 'event' : 'prefork';
    my $inst = start_apache(mpm => $mpm, servers => 3, $dir ? (dir => $dir) : ());
    $dir = $inst->{dir};
    # Clients write until told to stop (or their server dies), reporting
    # each acknowledged key on a pipe.
    pipe(my $rd, my $wr) or die "pipe: $!";
    my @kids;
    for my $c (1 .. $clients) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            close $rd;
            my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 10);
            for my $n (1 .. 100_000) {
                my ($k, $v) = ("k$cycle-$c-$n", "v$cycle-$c-$n-" . ('x' x ($n % 300)));
                my $r = req(POST => "$inst->{url}/set", qq({"key":"$k","value":"$v"}), ua => $ua);
                last unless $r->code == 200;
                syswrite $wr, "$k $v\n";
            }
            _exit(0);
        }
        push @kids, $pid;
    }
    close $wr;
    # Kill after a random number of acknowledgements (bounded in time too).
    my $target = 20 + int(rand(400));
    my ($got, $buf) = (0, '');
    my $sel = IO::Select->new($rd);
    my $deadline = time + 60;
    my $killed = 0;
    while (time < $deadline) {
        last unless $sel->can_read(1);
        my $n = sysread $rd, $buf, 65536, length $buf;
        last unless $n;
        while ($buf =~ s/^(\S+) (\S+)\n//) {
            $acked{$1} = $2;
            $got++;
        }
        if (!$killed && $got >= $target) {
            kill 'KILL', -$inst->{pid};     # Apache's whole process group
            $killed = 1;
        }
    }
    kill 'KILL', -$inst->{pid} unless $killed;
    waitpid($_, 0) for @kids;
    # Drain what the clients acknowledged before the kill reached them.
    while (my $n = sysread $rd, $buf, 65536, length $buf) { }
    while ($buf =~ s/^(\S+) (\S+)\n//) { $acked{$1} = $2 }
    close $rd;
    delete $inst->{pid};
    unlink "$dir/httpd.pid";

    # Restart and check every acknowledged write.
    my $check = start_apache(mpm => 'event', servers => 2, dir => $dir, port => $inst->{port});
    my ($lost, $corrupt) = (0, 0);
    my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
    # Everything stored, read back page by page (one request per 1000 keys
    # rather than one per key: the set grows with every cycle).  A value
    # must be the one its key was written with, acknowledged or not.
    my (%seen, $cursor);
    my $pages = 0;
    do {
        my $r = req(GET => "$check->{url}/scan?prefix=k&limit=1000"
                           . (defined $cursor ? "&cursor=$cursor" : ''), undef, ua => $ua);
        die 'scan failed: ' . $r->code unless $r->code == 200;
        my $j = json_of($r);
        $seen{ $_->{key} } = $_->{value} for @{ $j->{items} };
        $cursor = $j->{next};
    } while (defined $cursor && ++$pages < 10_000);
    for my $k (keys %seen) {
        my ($id, $n) = $k =~ /^k(\d+-\d+-(\d+))$/ or do { $corrupt++; next };
        $corrupt++ unless $seen{$k} eq "v$id-" . ('x' x ($n % 300));
    }
    for my $k (keys %acked) {
        $lost++ unless exists $seen{$k};
    }
    # And this cycle's keys one by one, through /get.
    for my $k (grep { /^k$cycle-/ } keys %acked) {
        my $r = req(GET => "$check->{url}/get?key=$k", undef, ua => $ua);
        my $j = json_of($r);
        if ($r->code != 200) { $lost++ }
        elsif (!$j || $j->{value} ne $acked{$k}) { $corrupt++ }
    }
    stop_apache($check);
    ok t_cmp($lost, 0, "cycle $cycle ($mpm): no acknowledged write lost (" . scalar(keys %acked) . " checked)");
    ok t_cmp($corrupt, 0, "cycle $cycle: no wrong value read");
    $lost_total += $lost;
    $corrupt_total += $corrupt;
}
ok t_cmp(scalar(keys %acked) > 0, 1, "writes were acknowledged: " . scalar(keys %acked) . " in $cycles cycles");
t_debug("kill -9 cycles $cycles, acknowledged writes " . scalar(keys %acked) . ", lost $lost_total, wrong $corrupt_total");
