from avbench.cli import main

main()
