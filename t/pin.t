# pin.t -- KVLSMPinConnections on: an HTTP/1.1 connection that used the
# store keeps its worker thread between requests (as under the worker
# MPM) instead of going back to the event MPM's listener; off (and with
# KVLSMNextRequestWait off: its short wait is tested in nextwait.t) it
# goes back.  mod_status tells which: a pinned idle
# connection is a busy worker in keep-alive ("K" on the scoreboard); an
# unpinned one waits in the listener, and no worker is busy for it.  Answers are the same either way, and a bad value fails
# configtest.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use LWP::UserAgent;
use Time::HiRes qw(sleep);
use KVTest;

my $mods = '/usr/lib/apache2/modules';
plan tests => 13, need({ "mod_status in $mods" => -f "$mods/mod_status.so" });

my $extra = status_conf();
my $on = start_apache(servers => 2, extra => "KVLSMPinConnections on\n$extra");
my $off = start_apache(servers => 2, extra => "KVLSMNextRequestWait off\n$extra");

# Two requests and a third on one kept-alive connection, then the
# scoreboard from another connection while the first one idles.
sub scenario {
    my $inst = shift;
    my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
    my @res = (req(POST => "$inst->{url}/set", '{"key":"p","value":"pinned"}', ua => $ua),
               req(GET => "$inst->{url}/get?key=p", undef, ua => $ua),
               req(GET => "$inst->{url}/get?key=p", undef, ua => $ua));
    my ($busy, $keepalive) = scoreboard($inst);
    return (\@res, $busy, $keepalive, $ua);
}

my ($res, $busy, $k, $ua) = scenario($on);
ok t_cmp(join(' ', map { $_->code } @$res), '200 200 200', 'pinned: three requests on one connection');
ok t_cmp($res->[2]->content, qq({"key":"p","value":"pinned"}\n), 'pinned: the answer');
ok t_cmp($res->[1]->header('X-KVLSM-Pid'), $res->[2]->header('X-KVLSM-Pid'), 'pinned: one child');
ok t_cmp($busy, 2, 'pinned: the idle connection holds a worker (and the status request one)');
ok t_cmp($k, 1, 'pinned: its worker waits in keep-alive (K on the scoreboard)');
my $again = req(GET => "$on->{url}/get?key=p", undef, ua => $ua);
ok t_cmp($again->code, 200, 'pinned: the connection serves again after idling');

my ($res2, $busy2, $k2) = scenario($off);
ok t_cmp(join(' ', map { $_->code } @$res2), '200 200 200', 'default: three requests on one connection');
ok t_cmp($res2->[2]->content, $res->[2]->content, 'default: the same answer');
ok t_cmp($busy2, 1, 'default: only the status request holds a worker');
ok t_cmp($k2, 0, 'default: no worker waits in keep-alive: the listener holds the connection');
# Only connections that used the store are pinned: one that asks
# mod_status twice goes back to the listener.
# (The pinned connection above is closed first; its worker lets go when
# it reads the end.  ua2 stays open: were it pinned, its worker would
# wait in K for KeepAliveTimeout, 10 s, longer than the 3 s looked for.)
$ua = undef;
my $ua2 = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
req(GET => "$on->{url}/server-status", undef, ua => $ua2) for 1 .. 2;
my $kept = -1;
for (1 .. 30) {
    (undef, $kept) = scoreboard($on);
    last if $kept == 0;
    sleep 0.1;
}
ok t_cmp($kept, 0, 'pinned server: a connection that did not use the store is not pinned');

stop_apache($on);
stop_apache($off);

my ($rc, $out) = configtest_directive('KVLSMPinConnections always');
ok t_cmp($rc != 0 ? 'refused' : 'accepted', 'refused', 'KVLSMPinConnections always: configtest fails');
ok t_cmp($out, qr/KVLSMPinConnections: 'always' is not valid: use on or off/, 'and says why');
