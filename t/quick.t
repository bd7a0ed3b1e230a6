# quick.t -- KVLSMQuickHandler on: the store answers from the
# quick_handler hook, exactly as it answers by default, and README's
# account of what that skips holds.  Two Apaches with the same
# configuration, one with the directive on, one with it off (the
# default):
#   - answers (bodies, status, ETag, X-KVLSM-Pid, Cache-Control, HEAD,
#     404, 405) are the same;
#   - a Require that applies (Require all denied, <LimitExcept GET HEAD>)
#     is enforced: such requests take the normal path;
#   - a path Apache would normalize (%-escapes) takes the normal path too;
#   - output filters still apply (mod_headers' Header set);
#   - what is NOT enforced with it on, as README warns: mod_access_compat's
#     Order/Deny (an access_checker hook the quick path skips) -- 403 with
#     it off, served with it on;
#   - a bad value fails configtest naming the directive.
use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestUtil;
use LWP::UserAgent;
use KVTest;

my $mods = '/usr/lib/apache2/modules';
plan tests => 27, need({
    "mod_headers and mod_access_compat in $mods" => -f "$mods/mod_headers.so" && -f "$mods/mod_access_compat.so",
});

my $extra = <<"CONF";
LoadModule headers_module $mods/mod_headers.so
LoadModule access_compat_module $mods/mod_access_compat.so
Header always set X-Kv-Filter applied
<Location "/denied">
    Require all denied
</Location>
<Location "/readonly">
    <LimitExcept GET HEAD>
        Require all denied
    </LimitExcept>
</Location>
<Location "/compat">
    Order deny,allow
    Deny from all
</Location>
CONF
my $off = start_apache(servers => 2, extra => $extra);
my $on = start_apache(servers => 2, extra => "KVLSMQuickHandler on\n$extra");

sub both {
    my ($method, $path, $body) = @_;
    return (req($method, "$on->{url}$path", $body), req($method, "$off->{url}$path", $body));
}

my ($q, $n) = both(POST => '/set', '{"key":"q\u00e9","value":"v\"1\n"}');
ok t_cmp($q->code, 200, 'quick: set 200');
ok t_cmp($q->content, $n->content, 'quick: set answers as the default path does');
($q, $n) = both(GET => '/get?key=q%C3%A9');
ok t_cmp($q->code, 200, 'quick: get 200');
ok t_cmp($q->content, "{\"key\":\"q\xc3\xa9\",\"value\":\"v\\\"1\\n\"}\n", 'quick: get body');
ok t_cmp($q->header('ETag'), qr/^"\d+"$/, 'quick: ETag');
ok t_cmp($q->header('X-KVLSM-Pid'), qr/^\d+$/, 'quick: X-KVLSM-Pid');
ok t_cmp($q->header('Cache-Control'), 'no-store', 'quick: Cache-Control');
ok t_cmp($q->header('Content-Type'), $n->header('Content-Type'), 'quick: same Content-Type');
ok t_cmp($q->header('Content-Length'), $n->header('Content-Length'), 'quick: same Content-Length');
ok t_cmp($q->header('X-Kv-Filter'), 'applied', 'quick: output filters (mod_headers) still apply');
($q, $n) = both(HEAD => '/get?key=q%C3%A9');
ok t_cmp($q->code . ' ' . length($q->content), '200 0', 'quick: HEAD, no body');
($q, $n) = both(GET => '/get?key=missing');
ok t_cmp($q->code . ' ' . $q->content, $n->code . ' ' . $n->content, 'quick: 404 as by default');
($q, $n) = both(PUT => '/get?key=q');
ok t_cmp($q->code, 405, 'quick: wrong method 405');
ok t_cmp($q->header('Allow'), $n->header('Allow'), 'quick: same Allow');
($q, $n) = both(GET => '/nothing');
ok t_cmp($q->code . ' ' . $q->content, $n->code . ' ' . $n->content, 'quick: unknown endpoint as by default');

# A Require that applies sends the request the normal way: enforced.
($q, $n) = both(GET => '/denied/get?key=q');
ok t_cmp($q->code, 403, 'quick: Require all denied still 403');
ok t_cmp(json_of($q) && json_of($q)->{error}, 'forbidden', 'quick: the 403 is JSON');
ok t_cmp(req(POST => "$on->{url}/denied/set", '{"key":"acl","value":"x"}')->code, 403,
         'quick: Require all denied, POST 403');
ok t_cmp(req(POST => "$on->{url}/readonly/set", '{"key":"acl","value":"x"}')->code, 403,
         'quick: <LimitExcept GET HEAD> Require all denied, POST 403');
ok t_cmp(req(GET => "$on->{url}/readonly/get?key=acl")->code, 404,
         'quick: <LimitExcept GET HEAD>, GET served (nothing stored)');
ok t_cmp(req(GET => "$on->{url}/get?key=acl")->code, 404, 'quick: denied writes stored nothing');

# A path Apache normalizes first takes the normal path: %67 is "g".
($q, $n) = both(GET => '/%67et?key=q%C3%A9');
ok t_cmp($q->code, 200, 'quick: a %-escaped path is normalized as by default');
ok t_cmp($q->content, $n->content, 'quick: same answer for it');

# README's warning: an access_checker hook (mod_access_compat's Deny) is
# skipped with the quick handler on.
($q, $n) = both(GET => '/compat/get?key=q%C3%A9');
ok t_cmp($n->code, 403, 'default path: Order deny,allow + Deny from all is 403');
ok t_cmp($q->code, 200, 'quick: Deny from all is NOT enforced (README says so)');

stop_apache($on);
stop_apache($off);

# A bad value fails configtest, naming the directive.
my ($rc, $out) = configtest_directive('KVLSMQuickHandler sometimes');
ok t_cmp($rc != 0 ? 'refused' : 'accepted', 'refused', 'KVLSMQuickHandler sometimes: configtest fails');
ok t_cmp($out, qr/KVLSMQuickHandler: 'sometimes' is not valid: use on or off/, 'and says why');
