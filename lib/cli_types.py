"""Value types for argparse, shared by every command line of the project.

Each takes the text of one command-line value and returns the value, or raises
`argparse.ArgumentTypeError` with a message that says what was expected:

    --epochs 0      ->  argument --epochs: must be at least 1, got 0
"""
import argparse
import math

NONE = "none"  # the word that turns an option off explicitly, e.g. `--clip-grad-norm none`


def parsed(convert, what, text):
    """`convert(text)`, or an argparse error saying that `what` was expected."""
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None


def int_argument(text):
    return parsed(int, "an integer", text)


def int_at_least(minimum, text):
    value = int_argument(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def positive_int(text):
    return int_at_least(1, text)


def non_negative_int(text):
    return int_at_least(0, text)


def float_argument(text):
    return parsed(float, "a number", text)


def finite_float(text):
    value = float_argument(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def non_negative_float(text):
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text):
    """A positive finite number: a rate, a norm or a time scale of inf or nan would train
    without meaning and write Infinity into the run's record."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def sequence_length(text):
    value = int_argument(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"a sequence needs L >= 2 (one marker per half), got {value}")
    return value


SCHEDULER_SCHEMES = ("tcp", "tls")


def scheduler_address(text):
    """A Dask scheduler's address, tcp://HOST:PORT or tls://HOST:PORT: Dask answers an address
    without its port with a traceback after a 20 s wait, and the scheme is asked for too, since
    it says whether the cluster speaks TLS."""
    scheme, _, location = text.partition("://")
    host, _, port = location.rpartition(":")
    if (scheme not in SCHEDULER_SCHEMES or not host or not port.isdigit()
            or not 0 < int(port) < 65536):
        raise argparse.ArgumentTypeError(
            f"expected tcp://HOST:PORT or tls://HOST:PORT, got '{text}'")
    return text


def or_none(value_type):
    """`value_type`, or the word 'none' (returned as is, so that it differs from 'not given')."""
    def parse(text):
        return NONE if text.lower() == NONE else value_type(text)
    parse.__name__ = value_type.__name__  # argparse names the type in its "invalid value" message
    return parse


def given_options(parser, argv):
    """The destinations of the options written in `argv`, abbreviations included: argparse sets
    a default only where the namespace has no value yet, so parsing into a namespace that
    holds a marker everywhere leaves the marker on exactly the options not given."""
    marker = object()
    namespace = argparse.Namespace(**{dest: marker for dest in vars(parser.parse_args(argv))})
    return {dest for dest, value in vars(parser.parse_args(argv, namespace)).items()
            if value is not marker}


def refuse_repeats(parser, options, names):
    """End with an argparse error when a list option names one value twice: a repeated seed,
    model or length would be one run counted twice in a table or a verdict."""
    for name in names:
        values = getattr(options, name)
        if len(set(values)) != len(values):
            parser.error(f"--{name.replace('_', '-')}: each one once, got {' '.join(map(str, values))}")
