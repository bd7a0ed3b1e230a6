# graceful.t -- graceful restarts under load: client processes write and
# read back while `apache2 -k graceful` is repeated; nothing acknowledged
# is lost, every read returns the newest acknowledged value or newer, and
# fewer than 1 request in 1,000 fails.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use IO::Select;
use POSIX qw(_exit);
use Time::HiRes qw(time);
use KVTest;

plan tests => 4;

my $clients = 3;
my $ops = 600;
my $restarts = 5;
my $inst = start_apache(mpm => 'event', servers => 3);

pipe(my $rd, my $wr) or die "pipe: $!";
my @kids;
for my $c (1 .. $clients) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        close $rd;
        my ($fail, $stale) = (0, 0);
        for my $n (1 .. $ops) {
            # A fresh connection each time, so old and new children answer.
            my $k = "g$c-" . ($n % 50);
            my $r = req(POST => "$inst->{url}/set", qq({"key":"$k","value":"$n"}));
            if ($r->code != 200) { $fail++; next }
            syswrite $wr, "ack $k $n\n";
            my $g = req(GET => "$inst->{url}/get?key=$k");
            if ($g->code != 200) { $fail++; next }
            my $j = json_of($g);
            $stale++ unless $j && $j->{value} >= $n;
        }
        syswrite $wr, "done $c $fail $stale\n";
        _exit(0);
    }
    push @kids, $pid;
}
close $wr;
my %acked;
my ($fail, $stale, $done, $buf, $acks) = (0, 0, 0, '', 0);
my $next_restart = 150;
my $did = 0;
my $sel = IO::Select->new($rd);
my $deadline = time + 120;
while ($done < $clients && time < $deadline) {
    last unless $sel->can_read(5);
    last unless sysread $rd, $buf, 65536, length $buf;
    while ($buf =~ s/^(\w+) (\S+) (\S+)(?: (\S+))?\n//) {
        if ($1 eq 'ack') { $acked{$2} = $3 if !defined $acked{$2} || $acked{$2} < $3; $acks++ }
        else { $done++; $fail += $3; $stale += $4 }
    }
    if ($did < $restarts && $acks >= $next_restart) {
        system(httpd(), '-f', $inst->{conf}, '-k', 'graceful') == 0 or die 'graceful failed';
        $did++;
        $next_restart += 250;
    }
}
waitpid($_, 0) for @kids;
my $lost = 0;
for my $k (keys %acked) {
    my $j = json_of(req(GET => "$inst->{url}/get?key=$k"));
    $lost++ unless $j && $j->{value} == $acked{$k};
}
stop_apache($inst);
my $requests = 2 * $clients * $ops;
ok t_cmp($did, $restarts, "$restarts graceful restarts under load");
ok t_cmp($lost, 0, 'no acknowledged write lost (' . scalar(keys %acked) . ' keys)');
ok t_cmp($stale, 0, 'no read older than an acknowledged write');
ok t_cmp($fail * 1000 < $requests ? 1 : 0, 1, "failed requests: $fail of $requests");
