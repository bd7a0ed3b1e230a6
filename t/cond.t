# cond.t -- versions and conditional writes: GET and POST /set answer a
# strong ETag; If-Match makes /set and /del conditional on the version
# (412 when it differs or the key is missing), If-None-Match: * makes
# /set create-only; malformed headers are 400; a 412 changes nothing; and
# concurrent compare-and-set increments through several children lose no
# update.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use KVTest;
use POSIX ();

plan tests => 22;

sub set { my ($k, $v, %h) = @_; req(POST => '/kv/set', qq({"key":"$k","value":"$v"}), %h) }
sub val { my $j = json_of(req(GET => "/kv/get?key=$_[0]")); $j ? $j->{value} : undef }

my $r = set('c1', 'a');
my $e1 = $r->header('ETag');
ok t_cmp($e1, qr/^"\d+"$/, '/set answers a strong ETag');
ok t_cmp(req(GET => '/kv/get?key=c1')->header('ETag'), $e1, 'GET gives the same ETag');

$r = set('c1', 'b', 'If-Match' => $e1);
ok t_cmp($r->code, 200, 'If-Match with the current ETag: written');
my $e2 = $r->header('ETag');
ok t_cmp($e2 ne $e1 ? 1 : 0, 1, 'a new version, a new ETag');
$r = set('c1', 'c', 'If-Match' => $e1);
ok t_cmp($r->code, 412, 'If-Match with an old ETag: 412');
ok t_cmp(json_of($r)->{error}, qr/precondition failed/, '412 explains itself in JSON');
ok t_cmp(val('c1'), 'b', 'a 412 changes nothing');
ok t_cmp(set('nope', 'x', 'If-Match' => '"1"')->code, 412, 'If-Match on a missing key: 412');
ok t_cmp(req(GET => '/kv/get?key=nope')->code, 404, '...and nothing was created');
ok t_cmp(set('c1', 'd', 'If-Match' => '*')->code, 200, 'If-Match: * on an existing key');
ok t_cmp(set('nope', 'x', 'If-Match' => '*')->code, 412, 'If-Match: * on a missing key: 412');
ok t_cmp(set('c1', 'e', 'If-Match' => qq("1", $e1, W/"9"))->code, 412, 'a list without the current version: 412');

ok t_cmp(set('c2', 'first', 'If-None-Match' => '*')->code, 200, 'If-None-Match: * creates');
ok t_cmp(set('c2', 'second', 'If-None-Match' => '*')->code, 412, 'If-None-Match: * on an existing key: 412');
ok t_cmp(val('c2'), 'first', 'create-only kept the first value');

my $e = req(GET => '/kv/get?key=c2')->header('ETag');
ok t_cmp(req(DELETE => '/kv/del?key=c2', undef, 'If-Match' => '"1"')->code, 412, 'DELETE with a wrong If-Match: 412');
ok t_cmp(val('c2'), 'first', '...and the key stays');
ok t_cmp(req(DELETE => '/kv/del?key=c2', undef, 'If-Match' => $e)->code, 200, 'DELETE with the right If-Match');

my $bad = 0;
for my $h ('12', '"12', 'W/12', '"1",', '*, "1"') {
    my $b = set('c3', 'x', 'If-Match' => $h);
    $bad++ unless $b->code == 400 && json_of($b)->{error} =~ /If-Match/;
}
ok t_cmp($bad, 0, 'malformed If-Match headers are 400');
ok t_cmp(req(GET => '/kv/get?key=c3')->code, 404, '...and store nothing');

# Compare-and-set increments from 4 clients on fresh connections (so
# several children): read value and ETag, write value+1 with If-Match,
# retry on 412.  Every increment must count.
set('counter', '0');
my ($clients, $each) = (4, 25);
my @kids;
for my $c (1 .. $clients) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my $done = 0;
        my $tries = 0;
        while ($done < $each && $tries++ < 5000) {
            my $g = req(GET => '/kv/get?key=counter');
            my $n = json_of($g)->{value};
            my $w = set('counter', $n + 1, 'If-Match' => $g->header('ETag'));
            $done++ if $w->code == 200;
        }
        POSIX::_exit($done == $each ? 0 : 1);
    }
    push @kids, $pid;
}
my $failed = 0;
for (@kids) { waitpid($_, 0); $failed++ if $? }
ok t_cmp($failed, 0, 'every client made its increments');
ok t_cmp(val('counter'), $clients * $each, 'no increment lost');
