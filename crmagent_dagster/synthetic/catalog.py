"""Static vocabularies for the synthetic month: markets, product categories, defect targets."""

from __future__ import annotations

# Appendix D error types, in Fig. 16's order of frequency.
DEFECTS: tuple[str, ...] = (
    "weak_call_to_action",
    "vague_incentive",
    "misaligned_tone",
    "audience_assumption_error",
    "irrelevant_offer",
)

# Share of *all* generated templates carrying each defect ("none" = a good template).
# The five defect shares keep Fig. 16's proportions (2057 : 1290 : 570 : ~280 : ~160);
# 42% of templates are good, so the weak quartile is defect-rich but the strong one is not.
DEFECT_TARGETS: dict[str, float] = {
    "none": 0.42,
    "weak_call_to_action": 0.274,
    "vague_incentive": 0.172,
    "misaligned_tone": 0.076,
    "audience_assumption_error": 0.037,
    "irrelevant_offer": 0.021,
}

# market -> (currency code, share of shops, {language: share})
MARKETS: dict[str, tuple[str, float, dict[str, float]]] = {
    "MY": ("MYR", 0.40, {"en": 0.70, "ms": 0.30}),
    "ID": ("IDR", 0.25, {"id": 0.75, "en": 0.25}),
    "SG": ("SGD", 0.15, {"en": 1.0}),
    "PH": ("PHP", 0.20, {"en": 1.0}),
}

# currency -> (fixed-amount voucher values, min-spend steps)
CURRENCY_AMOUNTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "MYR": ((2, 3, 5, 8, 10, 15, 20), (15, 20, 30, 50, 80, 100)),
    "SGD": ((2, 3, 5, 8, 10), (20, 30, 40, 60, 80)),
    "PHP": ((50, 75, 100, 150, 200, 300), (300, 500, 800, 1000, 1500)),
    "IDR": ((5000, 10000, 15000, 20000, 25000, 50000), (50000, 75000, 100000, 150000, 200000)),
}

# Fig. 9: many plans have no product; the rest lean to fast-moving goods.
PRODUCT_BOUND_SHARE = 0.55
VOUCHER_BOUND_SHARE = 0.52
VOUCHER_TYPE_SHARES: dict[str, float] = {
    "fixed_amount_off": 0.45,
    "percentage_off": 0.35,
    "free_shipping": 0.20,
}

# level1 -> (weight, {level2: [level3, ...]}, adjectives)
CATEGORIES: dict[str, tuple[float, dict[str, list[str]], list[str]]] = {
    "Beauty & Personal Care": (0.22, {
        "Skincare": ["Serum", "Moisturiser", "Sunscreen", "Facial Cleanser", "Toner"],
        "Makeup": ["Lipstick", "Cushion Foundation", "Mascara", "Eyeliner"],
        "Hair Care": ["Shampoo", "Hair Oil", "Conditioner"],
    }, ["Hydrating", "Brightening", "Gentle", "Vitamin C", "Matte", "Long-Lasting", "Herbal"]),
    "Fashion Accessories": (0.16, {
        "Bags": ["Tote Bag", "Sling Bag", "Backpack", "Wallet"],
        "Jewellery": ["Earrings", "Necklace", "Bracelet"],
        "Eyewear": ["Sunglasses", "Blue-Light Glasses"],
    }, ["Classic", "Minimalist", "Leather", "Canvas", "Gold-Tone", "Vintage"]),
    "Home & Living": (0.12, {
        "Kitchenware": ["Non-Stick Pan", "Food Container Set", "Knife Set"],
        "Bedding": ["Pillow", "Bedsheet Set", "Blanket"],
        "Storage": ["Storage Box", "Shoe Rack"],
    }, ["Premium", "Compact", "Stackable", "Soft", "Durable"]),
    "Mobile & Gadgets": (0.11, {
        "Accessories": ["Phone Case", "Fast Charger", "Power Bank", "USB-C Cable"],
        "Audio": ["Wireless Earbuds", "Bluetooth Speaker"],
        "Wearables": ["Smart Watch", "Fitness Band"],
    }, ["Shockproof", "Fast-Charging", "Noise-Cancelling", "Slim", "Waterproof"]),
    "Health": (0.08, {
        "Supplements": ["Vitamin C Tablets", "Collagen Drink", "Fish Oil"],
        "Medical Supplies": ["Face Masks", "Thermometer"],
    }, ["Daily", "Sugar-Free", "Family-Size", "Clinically Tested"]),
    "Groceries": (0.09, {
        "Snacks": ["Potato Chips", "Chocolate Biscuits", "Mixed Nuts"],
        "Beverages": ["Coffee Beans", "Green Tea", "3-in-1 Coffee"],
        "Pantry": ["Instant Noodles", "Cooking Oil", "Rice"],
    }, ["Crunchy", "Roasted", "Organic", "Spicy", "Family Pack"]),
    "Women's Clothing": (0.08, {
        "Dresses": ["Maxi Dress", "Midi Dress"],
        "Tops": ["Blouse", "Knit Top"],
        "Modest Wear": ["Baju Kurung", "Tudung"],
    }, ["Floral", "Breathable", "Linen", "Pleated", "Everyday"]),
    "Men's Clothing": (0.06, {
        "Tops": ["T-Shirt", "Polo Shirt", "Oxford Shirt"],
        "Bottoms": ["Chino Pants", "Jogger Pants"],
    }, ["Slim-Fit", "Cotton", "Quick-Dry", "Oversized"]),
    "Baby & Kids": (0.04, {
        "Diapers": ["Tape Diapers", "Pant Diapers"],
        "Toys": ["Building Blocks", "Plush Toy"],
    }, ["Soft", "Extra-Dry", "Educational", "BPA-Free"]),
    "Sports & Outdoors": (0.02, {
        "Fitness": ["Yoga Mat", "Resistance Bands", "Dumbbell Set"],
        "Outdoor": ["Camping Lamp", "Water Bottle"],
    }, ["Non-Slip", "Lightweight", "Foldable", "Insulated"]),
    "Pet Care": (0.02, {
        "Pet Food": ["Cat Food", "Dog Treats"],
        "Pet Accessories": ["Cat Litter", "Pet Bed"],
    }, ["Grain-Free", "Clumping", "Salmon", "Odour-Control"]),
}
