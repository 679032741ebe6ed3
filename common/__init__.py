"""Small pieces shared by training/, serving/ and app/ that belong to none of them."""
