"""The one error type the CLI turns into a one-line message and an exit code."""

EXIT_OK = 0
EXIT_ENVIRONMENT = 1  # the machine or a data file is wrong (NVML broken, malformed profile)
EXIT_USAGE = 2  # the user's input is wrong (unknown model, negative context)


class AdvisorError(Exception):
    """A problem the user can act on. `str(error)` is the whole message."""

    exit_code = EXIT_ENVIRONMENT


class UsageError(AdvisorError):
    exit_code = EXIT_USAGE


class ProfileError(AdvisorError):
    """A data file under profiles/ (or a user profile) is malformed."""

    exit_code = EXIT_ENVIRONMENT


def suggest(name: str, choices, kind: str) -> UsageError:
    """An 'unknown X' error naming the nearest valid choices."""
    import difflib

    choices = sorted(set(choices))
    near = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=4, cutoff=0.4)
    by_lower = {c.lower(): c for c in choices}
    near = [by_lower[n] for n in near]
    if not near:
        near = [c for c in choices if name.lower() in c.lower()][:4]
    hint = f"; did you mean {', '.join(near)}?" if near else f"; choose from {', '.join(choices[:12])}"
    return UsageError(f"unknown {kind} '{name}'{hint}")
