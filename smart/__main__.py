"""``python -m smart``: the same command as ``smart``, for child processes that know only the interpreter."""

from smart.launch import main

main()
