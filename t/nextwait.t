# nextwait.t -- KVLSMNextRequestWait: after answering a store request on
# an HTTP/1.1 keep-alive connection, the worker waits (at most the
# configured time) for the connection's next request before handing it
# back to the event MPM's listener.  What must hold:
#   - the answer goes out before the wait, never after it;
#   - during the wait the worker shows as keep-alive ("K") on mod_status's
#     scoreboard, and after it the worker is free again, the connection
#     back with the listener and still serving;
#   - pipelined requests are answered, in order;
#   - with KVLSMNextRequestWait off, no worker is held after an answer.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use Time::HiRes qw(time sleep);
use KVTest;

my $mods = '/usr/lib/apache2/modules';
plan tests => 12, need({ "mod_status in $mods" => -f "$mods/mod_status.so" });

# The longest wait the directive takes, so that a test can see it.
my $on = start_apache(servers => 1, extra => "KVLSMNextRequestWait 100ms\n@{[status_conf()]}");
my $off = start_apache(servers => 1, extra => "KVLSMNextRequestWait off\n@{[status_conf()]}");


# One kept-alive connection: 20 requests one after another, each sent
# once the answer before it is in.  Were an answer held back until the
# wait ran out, they would take 20 x 100 ms.
my $s = raw_connect($on->{port});
my $t0 = time;
my @codes;
for my $i (1 .. 20) {
    raw_write($s, raw_request(POST => '/set', qq({"key":"w$i","value":"v$i"})));
    my $a = raw_read($s, 30);
    push @codes, $a ? $a->{code} : 'none';
}
my $took = time - $t0;
ok t_cmp(join(' ', @codes), join(' ', ('200') x 20), '20 requests on one connection answered');
ok t_cmp($took < 1.0 ? 'prompt' : sprintf('%.2f s', $took), 'prompt',
         'no answer waits for the next request (20 in under 1 s; 2 s if each were held 100 ms)');

# The worker waits in keep-alive right after an answer.  The look from
# another connection must come within the 100 ms; on a slow machine it may
# not, so look up to 10 times, each after a fresh request.
my ($seen, $tries) = (0, 0);
while (!$seen && $tries < 10) {
    $tries++;
    raw_write($s, raw_request(GET => '/get?key=w1'));
    my $a = raw_read($s, 30);
    my $at = time;
    my ($busy, $k) = scoreboard($on);
    $seen = 1 if $k >= 1 && $busy >= 2 && time - $at < 0.09;
    # A miss makes the connection skip the wait on its next request(s):
    # let it come back (the request after a skipped one waits again).
    raw_write($s, raw_request(GET => '/get?key=w1')), raw_read($s, 30) if !$seen;
}
ok t_cmp($seen, 1, 'during the wait its worker is busy in keep-alive (K on the scoreboard)');

# After the wait the worker lets go (bounded look: 5 s) ...
my ($busy, $k) = (-1, -1);
my $deadline = time + 5;
while (time < $deadline) {
    ($busy, $k) = scoreboard($on);
    last if $busy == 1 && $k == 0;
    sleep 0.05;
}
ok t_cmp("$busy $k", '1 0', 'after the wait no worker holds the idle connection');
# ... and the connection, back with the listener, still serves.
raw_write($s, raw_request(GET => '/get?key=w20'));
my $a = raw_read($s, 30);
ok t_cmp($a ? $a->{code} : 'none', 200, 'the connection serves after the wait ran out');
ok t_cmp($a ? $a->{body} : '', qq({"key":"w20","value":"v20"}\n), 'with the answer');

# Pipelined: three requests in one write, three answers in order.
raw_write($s, join('', map { raw_request(GET => "/get?key=w$_") } 3, 4, 5));
my @bodies = map { my $x = raw_read($s, 30); $x ? $x->{body} : 'none' } 1 .. 3;
ok t_cmp(join('', @bodies), join('', map { qq({"key":"w$_","value":"v$_"}\n) } 3, 4, 5),
         'pipelined requests answered in order');
close $s;

# Off: an answered connection goes straight back to the listener.
my $s2 = raw_connect($off->{port});
raw_write($s2, raw_request(POST => '/set', '{"key":"o","value":"off"}'));
my $a2 = raw_read($s2, 30);
ok t_cmp($a2 ? $a2->{code} : 'none', 200, 'off: the request is answered');
# No worker waits on it (no K right after the answer); the worker that
# answered may still be finishing that request (logging, its pool) when
# the client has the answer, so its letting go is looked for, bounded.
my ($busy2, $k2) = scoreboard($off);
my $k_first = $k2;
my $deadline2 = time + 5;
while (time < $deadline2 && !($busy2 == 1 && $k2 == 0)) {
    sleep 0.05;
    ($busy2, $k2) = scoreboard($off);
}
ok t_cmp("$k_first $busy2 $k2", "0 1 0", "off: no worker holds the idle connection");
raw_write($s2, raw_request(GET => '/get?key=o'));
$a2 = raw_read($s2, 30);
ok t_cmp($a2 ? $a2->{body} : '', qq({"key":"o","value":"off"}\n), 'off: the connection serves again');
close $s2;

# Both servers ended clean: nothing in the error logs above notice level
# about the connections.
for my $inst ($on, $off) {
    stop_apache($inst);
}
my $log = join '', map { open my $f, '<', "$_->{dir}/error.log" or die $!; <$f> } $on, $off;
my @bad = grep { /\[(?:\w+:)?(?:error|crit|alert|emerg)\]/ } split /\n/, $log;
ok t_cmp(scalar(@bad), 0, 'no errors in the logs') or print STDERR map { "# $_\n" } @bad;
ok t_cmp(scalar(grep { /AH00161|server reached MaxRequestWorkers/ } split /\n/, $log), 0,
         'never out of workers');
