"""``python -m isoscope``: the same command line as the ``isoscope`` script."""

from isoscope.cli import main

if __name__ == "__main__":
    main()
