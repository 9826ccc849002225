"""``python -m viwoscript`` is the ``viwo`` command."""

from .cli import main

if __name__ == "__main__":
    main()
