"""The e-commerce story's data: messy marketplace listings and a deep product taxonomy (fixed, offline)."""

from __future__ import annotations

# Listings as sellers write them: caps, emoji-free noise, brands, places and sizes in any order.
LISTINGS = [
    "ACME X1 Carbon laptop 14in 16GB RAM - like new!! ships from Berlin",
    "Zenit UltraBook 13 ultralight notebook, i7, 512GB SSD, minor scratches",
    "Apple iPhone 13 128GB blue unlocked, battery 89%, pickup in Lyon",
    "Samsung Galaxy S21 phone w/ charger, cracked back glass, cheap",
    "Sony WH-1000XM4 noise cancelling headphones black, barely used",
    "Bose QuietComfort earbuds, left bud crackles sometimes",
    "Nike Pegasus 39 running shoes size 42 - worn twice, Madrid",
    "Adidas Ultraboost trainers size 44 white, great cushioning",
    "Salomon Speedcross trail running shoes 43, waterproof GTX",
    "Wilson Pro Staff tennis racket 97, strung, grip 3",
    "Babolat Pure Drive tennis racquet + 3 balls, used one season",
    "IKEA KALLAX shelf 4x4 white, disassembled, collect in Oslo",
    "Le Creuset cast iron casserole 24cm, cherry red, no chips",
    "Tefal non-stick frying pan set 3 pcs, dishwasher safe",
    "Nespresso Vertuo coffee machine with milk frother, descaled",
    "DeLonghi Magnifica bean to cup espresso machine, needs new gasket",
    "Organic green tea 100 bags from Japan, sealed, best before 2027",
    "Lavazza espresso beans 1kg, Italian roast",
    "LEGO Technic Porsche 911 set 42096 complete with box",
    "Hasbro Monopoly classic board game, all pieces, Dublin",
    "Canon EOS R6 camera body, shutter count 12k, Amsterdam",
    "Fujifilm X100V compact camera silver + leather case",
    "Kindle Paperwhite e-reader 8GB, waterproof, with cover",
    "Dyson V11 cordless vacuum, new battery, all attachments",
]

# A deep taxonomy (4 levels): classify walks it on the server; the agent never reads it.
TAXONOMY = {
    "Electronics": {
        "Computers": {"Laptops": ["Ultrabooks", "Business laptops"], "Tablets": ["E-readers", "Android tablets"]},
        "Phones": {"Smartphones": ["iPhone", "Android phones"], "Accessories": ["Chargers", "Cases"]},
        "Audio": {"Headphones": ["Over-ear headphones", "Earbuds"], "Speakers": ["Bluetooth speakers"]},
        "Cameras": {"Digital cameras": ["Mirrorless cameras", "Compact cameras"], "Lenses": ["Prime lenses"]},
    },
    "Sports": {
        "Running": {"Shoes": ["Road running shoes", "Trail running shoes"], "Apparel": ["Running jackets"]},
        "Racket sports": {"Tennis": ["Tennis rackets", "Tennis balls"], "Badminton": ["Badminton rackets"]},
    },
    "Home": {
        "Kitchen": {"Cookware": ["Pans", "Casseroles"], "Coffee": ["Espresso machines", "Capsule machines"]},
        "Furniture": {"Storage": ["Shelves", "Wardrobes"]},
        "Cleaning": {"Vacuums": ["Cordless vacuums", "Robot vacuums"]},
    },
    "Grocery": {"Drinks": {"Tea": ["Green tea", "Black tea"], "Coffee beans": ["Espresso beans"]}},
    "Toys": {"Building sets": {"LEGO": ["LEGO Technic"]}, "Games": {"Board games": ["Family games"]}},
}

SHOPPER = ("I run on muddy forest trails and need waterproof shoes, size 43 or so. What do you have, and is "
           "there a good cordless vacuum too?")
