# restart.t -- the store keeps every acknowledged write across a graceful
# restart under load, a SIGKILLed child, and a full stop and start.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;

plan tests => 8;

my $inst = start_apache(mpm => 'event', servers => 3);
my %acked;
my $failed = 0;
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);

sub write_keys {
    my ($from, $to) = @_;
    for my $i ($from .. $to) {
        my $r = req(POST => "$inst->{url}/set", qq({"key":"rs$i","value":"val$i"}), ua => $ua);
        if ($r->code == 200) { $acked{"rs$i"} = "val$i" } else { $failed++ }
    }
}

sub lost {
    my $lost = 0;
    for my $k (sort keys %acked) {
        my $r = req(GET => "$inst->{url}/get?key=$k");
        my $j = json_of($r);
        $lost++ unless $r->code == 200 && $j && $j->{value} eq $acked{$k};
    }
    return $lost;
}

write_keys(1, 200);

# Graceful restart in the middle of the writes: old and new children
# share the directory.
system(httpd(), '-f', $inst->{conf}, '-k', 'graceful') == 0 or die 'graceful failed';
write_keys(201, 400);
system(httpd(), '-f', $inst->{conf}, '-k', 'graceful') == 0 or die 'graceful failed';
write_keys(401, 600);
ok t_cmp($failed, 0, 'no request failed across two graceful restarts');
ok t_cmp(lost(), 0, 'nothing acknowledged was lost across graceful restarts');

# SIGKILL the child that just answered a write.
my $r = req(POST => "$inst->{url}/set", '{"key":"victim","value":"kept"}');
ok t_cmp($r->code, 200, 'write before the kill');
$acked{victim} = 'kept';
my $child = $r->header('X-KVLSM-Pid');
ok t_cmp(($child && $child != $inst->{pid}) ? 1 : 0, 1, "a child answered ($child)");
kill 'KILL', $child;
$ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
write_keys(601, 700);
ok t_cmp(lost(), 0, 'a killed child lost nothing acknowledged');

# Stop and start again on the same directory.
stop_apache($inst);
$inst = start_apache(mpm => 'event', servers => 2, dir => $inst->{dir}, port => $inst->{port});
ok t_cmp(lost(), 0, 'everything back after a stop and start');
ok t_cmp(scalar(keys %acked), 701, 'all 701 keys checked');
my $st = req(GET => "$inst->{url}/get?key=rs1");
ok t_cmp($st->code, 200, 'store serves after restart');
stop_apache($inst);
