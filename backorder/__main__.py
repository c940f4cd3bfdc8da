from backorder.cli import main

main()
