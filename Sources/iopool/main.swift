print("iopool")
