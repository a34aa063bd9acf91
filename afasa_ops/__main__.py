from afasa_ops.cli import main

main()
