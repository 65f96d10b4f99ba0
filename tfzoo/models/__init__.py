"""The classic model factories, one module per family; tfzoo.registry imports them (and the text generator in
tfzoo.text.model) on first use, which registers them."""
