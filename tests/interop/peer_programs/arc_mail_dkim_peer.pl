#!/usr/bin/perl
# Mail::DKIM's ARC signer and verifier driven for the ARC interop tests
# (tests/interop/test_arc_interop.py).
#
#   perl arc_mail_dkim_peer.pl --dns 127.0.0.1:PORT [--timeout SECONDS]
#
# Reads jobs from standard input, one per line, fields separated by TABs, and
# answers each with exactly one line on standard output:
#
#   verify INFILE
#       -> "RESULT<TAB>detail": Mail::ARC::Verifier's chain result (pass,
#          fail, none; "invalid" is reported as fail)
#   seal ALG KEYFILE DOMAIN SELECTOR SRVID ARRIVAL SEALFILE OUTFILE
#       -> "ok<TAB>CV" (ALG: the signing algorithm; OUTFILE holds an Authentication-Results field for
#          SRVID with the arc= result, the new ARC set, then the message of
#          SEALFILE) or "error<TAB>why".  The chain is validated on ARRIVAL
#          (the message as it arrived) and its result given to the signer as
#          Chain; SEALFILE is what is sealed (ARRIVAL changed by a mailing
#          list, or ARRIVAL itself).
#
# Keys are looked up through a Net::DNS resolver that asks only the server
# given by --dns.
use strict;
use warnings;

use Getopt::Long;
use Mail::DKIM 0.50;
use Mail::DKIM::DNS;
use Mail::DKIM::ARC::Signer;
use Mail::DKIM::ARC::Verifier;
use Net::DNS;

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "cannot read $path: $!\n";
    local $/;
    my $data = <$fh>;
    close $fh;
    return $data;
}

sub feed {
    my ( $obj, $data ) = @_;
    my $step = 1 << 20;
    for ( my $i = 0 ; $i < length $data ; $i += $step ) {
        $obj->PRINT( substr( $data, $i, $step ) );
    }
    $obj->CLOSE;
}

sub validate {
    my ($message) = @_;
    my $arc = Mail::DKIM::ARC::Verifier->new();
    feed( $arc, $message );
    my $result = $arc->result // 'none';
    $result = 'fail' if $result eq 'invalid';
    my $detail = $arc->result_detail // $result;
    $detail =~ s/[\t\r\n]+/ /g;
    return ( $result, $detail );
}

my $dns;
my $timeout = 2;
GetOptions( 'dns=s' => \$dns, 'timeout=i' => \$timeout )
  or die "usage: $0 --dns IP:PORT [--timeout S]\n";
defined $dns or die "usage: $0 --dns IP:PORT [--timeout S]\n";
my ( $ns_host, $ns_port ) = split( /:/, $dns, 2 );
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

my $verify_job = sub {
    my ($in) = @_;
    my ( $result, $detail ) = validate( slurp($in) );
    return "$result\t$detail";
};

my $seal_job = sub {
    my ( $alg, $keyfile, $domain, $selector, $srvid, $arrival, $sealfile, $out ) = @_;
    my ($cv) = validate( slurp($arrival) );
    my $ar      = "Authentication-Results: $srvid; arc=$cv\r\n";
    my $message = $ar . slurp($sealfile);
    my $signer  = Mail::DKIM::ARC::Signer->new(
        Algorithm => $alg,
        Chain     => $cv,
        Domain    => $domain,
        SrvId     => $srvid,
        Selector  => $selector,
        KeyFile   => $keyfile,
        Timestamp => time(),
    );
    feed( $signer, $message );
    my $result = $signer->result // '';
    die "the signer says $result: " . ( $signer->result_detail // '?' ) . "\n" unless $result eq 'sealed';
    my $fields = $signer->as_string;
    $fields =~ s/\r?\n/\r\n/g;
    $fields .= "\r\n" unless $fields =~ /\r\n\z/;
    open my $fh, '>:raw', $out or die "cannot write $out: $!\n";
    print {$fh} $fields, $message;
    close $fh or die "cannot write $out: $!\n";
    return "ok\t$cv";
};

$| = 1;
while ( my $line = <STDIN> ) {
    $line =~ s/\r?\n\z//;
    next unless length $line;
    my ( $job, @args ) = split /\t/, $line;
    my $answer = eval {
        if    ( $job eq 'seal' )   { @args == 8 or die "seal needs 8 arguments\n"; $seal_job->(@args) }
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
