#!/usr/bin/perl
# Mail::DKIM driven for the interop tests and the benchmarks: one script, two modes.
#
# == Jobs mode (the interop tests) ==
#
#   perl mail_dkim_peer.pl [--dns 127.0.0.1:PORT] [--timeout SECONDS] [--oversign a,b,...]
#
# Reads jobs from standard input, one per line, fields separated by TABs, and
# answers each with exactly one line on standard output:
#
#   sign ALG HCANON BCANON KEYFILE DOMAIN SELECTOR INFILE OUTFILE
#       -> "ok" (OUTFILE holds the DKIM-Signature field, CRLF-terminated,
#          followed by the unchanged message) or "error<TAB>why"
#   verify INFILE
#       -> "RESULT<TAB>detail" for the first signature: pass, fail,
#          permerror (Mail::DKIM says "invalid"), temperror, or none
#
# Keys are looked up in DNS through a Net::DNS resolver that asks only the
# server given by --dns (nothing is sent to the system's resolvers).
#
# == Loop mode (the benchmarks) ==
#
#   perl mail_dkim_peer.pl loop OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE
#                               HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME
#
# The arguments and the protocol (one operation, "ready SECONDS", wait for
# "go", calibrate, "round N SECONDS" lines, "done") are those described at the
# top of opendkim_peer.c.  Exit status 4 with a message on standard error means
# the installed Mail::DKIM cannot do what was asked (e.g. ed25519-sha256).
#
# No DNS in loop mode: Mail::DKIM::DNS::query is replaced by a function that
# answers the key record's name with the record read from TXTFILE and nothing
# else.
use strict;
use warnings;

use Getopt::Long;
use POSIX qw(ceil);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);
use Mail::DKIM 0.40;
use Mail::DKIM::DNS;
use Mail::DKIM::PrivateKey;
use Mail::DKIM::Signer;
use Mail::DKIM::Verifier;
use Net::DNS;

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "cannot read $path: $!\n";
    local $/;
    my $data = <$fh>;
    close $fh;
    return $data;
}

# the field as Mail::DKIM makes it, in wire form and CRLF-terminated
sub field_of {
    my ($signature) = @_;
    my $field = $signature->as_string;
    $field =~ s/\r?\n/\r\n/g;
    return $field . "\r\n";
}

# -- jobs mode ------------------------------------------------------------------

sub feed {
    my ( $dkim, $data ) = @_;
    my $step = 1 << 20;
    for ( my $i = 0 ; $i < length $data ; $i += $step ) {
        $dkim->PRINT( substr( $data, $i, $step ) );
    }
    $dkim->CLOSE;
}

my %status = (
    pass      => 'pass',
    fail      => 'fail',
    invalid   => 'permerror',
    temperror => 'temperror',
    none      => 'none',
);

sub jobs_main {
    my $dns;
    my $timeout  = 2;
    my $oversign = '';
    GetOptions(
        'dns=s'      => \$dns,
        'timeout=i'  => \$timeout,
        'oversign=s' => \$oversign,
    ) or die "usage: $0 [--dns IP:PORT] [--timeout S] [--oversign a,b]\n";

    my ( $ns_host, $ns_port ) = defined $dns ? split( /:/, $dns, 2 ) : ( '127.0.0.1', 9 );
    # Without --dns, point at the discard port on the loopback: lookups fail, and
    # no query ever leaves this machine.
    my $resolver = Net::DNS::Resolver->new(
        nameservers => [$ns_host],
        port        => $ns_port || 53,
        recurse     => 1,
        retry       => 1,
        retrans     => 1,
        udp_timeout => $timeout,
        tcp_timeout => $timeout,
        searchlist  => [],
        defnames    => 0,
        dnsrch      => 0,
    );
    $resolver->udppacketsize(1232);
    Mail::DKIM::DNS::resolver($resolver);
    $Mail::DKIM::DNS::TIMEOUT = $timeout + 1;

    my %oversigned = map { lc($_) => '+' } grep { length } split /,/, $oversign;

    my $sign_job = sub {
        my ( $alg, $hc, $bc, $keyfile, $domain, $selector, $in, $out ) = @_;
        my $message = slurp($in);
        my $dkim    = Mail::DKIM::Signer->new(
            Algorithm => $alg,
            Method    => "$hc/$bc",
            Domain    => $domain,
            Selector  => $selector,
            KeyFile   => $keyfile,
            Timestamp => time(),
        );
        $dkim->extended_headers( {%oversigned} ) if %oversigned;
        feed( $dkim, $message );
        open my $fh, '>:raw', $out or die "cannot write $out: $!\n";
        print {$fh} field_of( $dkim->signature ), $message;
        close $fh or die "cannot write $out: $!\n";
        return "ok";
    };

    my $verify_job = sub {
        my ($in)    = @_;
        my $message = slurp($in);
        my $dkim    = Mail::DKIM::Verifier->new();
        feed( $dkim, $message );
        my @sigs = $dkim->signatures;
        return "none\tno signature" unless @sigs;
        my $sig    = $sigs[0];
        my $result = $sig->result // 'none';
        my $detail = $sig->result_detail // $result;
        $detail =~ s/[\t\r\n]+/ /g;
        return ( $status{$result} // $result ) . "\t" . $detail;
    };

    $| = 1;
    while ( my $line = <STDIN> ) {
        $line =~ s/\r?\n\z//;
        next unless length $line;
        my ( $job, @args ) = split /\t/, $line;
        my $answer = eval {
            if    ( $job eq 'sign' )   { @args == 8 or die "sign needs 8 arguments\n"; $sign_job->(@args) }
            elsif ( $job eq 'verify' ) { @args == 1 or die "verify needs 1 argument\n"; $verify_job->(@args) }
            else                       { die "unknown job $job\n" }
        };
        if ( !defined $answer ) {
            my $why = $@ || 'unknown error';
            $why =~ s/[\t\r\n]+/ /g;
            $answer = "error\t$why";
        }
        print $answer, "\n";
    }
    return 0;
}

# -- loop mode ------------------------------------------------------------------

sub now { return clock_gettime(CLOCK_MONOTONIC) }

sub loop_main {
    @ARGV == 14 or die "usage: $0 loop OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE "
      . "HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME\n";
    my ( $op, $alg, $canon, $domain, $selector, $keyfile, $txtfile, $msgfile, $outfile,
        $headers, $oversign, $min_time, $rounds, $max_time ) = @ARGV;

    if ( $alg ne 'rsa-sha256' ) {
        my $module = 'Mail::DKIM::Algorithm::' . ( $alg =~ tr/-/_/r );
        unless ( eval "require $module; 1" ) {
            print STDERR "Mail::DKIM $Mail::DKIM::VERSION has no $alg (no $module)\n";
            exit 4;
        }
    }

    my $message = slurp($msgfile);
    my $sign    = $op eq 'sign';
    my ( $key, %extended );
    if ($sign) {
        $key = Mail::DKIM::PrivateKey->load( File => $keyfile );
        for my $h ( split /,/, $headers ) { $extended{$h} = '*' if $h ne '-' }
        for my $h ( split /,/, $oversign ) { $extended{$h} = '+' if $h ne '-' }
    }
    else {
        my $record = slurp($txtfile);
        $record =~ s/[\r\n]+\z//;
        my $want = lc "$selector._domainkey.$domain";
        my @strings = unpack '(A255)*', $record;
        my $rr = Net::DNS::RR->new( name => $want, type => 'TXT', txtdata => \@strings );
        no warnings 'redefine';
        *Mail::DKIM::DNS::query = sub {
            my ( $name, $type ) = @_;
            $name =~ s/\.\z//;
            if ( lc $name eq $want && uc $type eq 'TXT' ) {
                $@ = 'NOERROR';
                return ($rr);
            }
            $@ = 'NXDOMAIN';
            return;
        };
    }

    my $out;
    my $one = sub {
        if ($sign) {
            my $signer = Mail::DKIM::Signer->new(
                Algorithm => $alg,
                Method    => $canon,
                Domain    => $domain,
                Selector  => $selector,
                Key       => $key,
            );
            $signer->extended_headers( {%extended} ) if %extended;
            $signer->PRINT($message);
            $signer->CLOSE;
            my $sig = $signer->signature or die "no signature produced\n";
            print {$out} field_of($sig) if $out;
        }
        else {
            my $verifier = Mail::DKIM::Verifier->new();
            $verifier->PRINT($message);
            $verifier->CLOSE;
            my $result = $verifier->result;
            if ( $result ne 'pass' ) {
                print STDERR "verification did not pass: $result (", ( $verifier->result_detail // '' ), ")\n";
                exit 3;
            }
            print {$out} "pass\n" if $out;
        }
    };
    my $batch = sub {
        my ($n) = @_;
        my $t0 = now();
        $one->() for 1 .. $n;
        return now() - $t0;
    };

    open $out, '>:raw', $outfile or die "$outfile: $!\n";
    my $t0 = now();
    $one->();
    my $first = now() - $t0;
    close $out;
    undef $out;
    $| = 1;
    printf "ready %.9f\n", $first;
    my $line = <STDIN>;
    return 0 unless defined $line && $line =~ /^go/;

    my ( $n, $t ) = ( 1, $first );
    if ( $first < $min_time ) {
        while (1) {
            $t = $batch->($n);
            last if $t >= $min_time / 4 || $n >= 2**30;
            $n *= 2;
        }
        $n = ceil( $n * $min_time / ( $t > 0 ? $t : 1e-9 ) );
        $n = 1 if $n < 1;
        $t = $min_time;
    }
    if ( $rounds > 1 && $t * $rounds > $max_time ) {
        $rounds = int( $max_time / ( $t > 0 ? $t : 1e-9 ) );
        $rounds = 1 if $rounds < 1;
    }
    for ( 1 .. $rounds ) {
        my $dt = $batch->($n);
        printf "round %d %.9f\n", $n, $dt;
    }
    print "done\n";
    return 0;
}

if ( @ARGV && $ARGV[0] eq 'loop' ) {
    shift @ARGV;
    exit loop_main();
}
exit jobs_main();
