"""earlyphase.empirical"""
