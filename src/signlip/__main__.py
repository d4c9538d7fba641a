"""`python -m signlip <command> ...` (used by `torchrun -m signlip train ...`)."""

from signlip.cli import main

if __name__ == "__main__":
    main()
